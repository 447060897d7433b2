"""Fuzzing the API from its own OpenAPI document (schemathesis), bounded and seeded.

Every operation is called with data generated from its schema, valid and invalid, as the HR intake,
as a person (an administrator, who reaches the most code) and with no token, over real HTTP to the
app served by uvicorn. A caller an operation refuses before reading its input gets fewer examples
there: its answer cannot depend on them. Each answer must be no 5xx, have a documented status, content type, headers
and body, and refuse invalid data with a 4xx; a refused intake call must start nothing in Temporal.
The generator runs in a thread (schemathesis calls are synchronous) while the test's event loop
serves the API, the token issuer and the Temporal client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.access_api import ADMIN, INTAKE
from tests.support.recording_client import RecordingClient
from tests.support.token_issuer import Issuer

SEED = 20261201
# Per operation and generation mode, for a caller the operation serves.
EXAMPLES = 20
# For a caller refused before its input is read (no token anywhere; the intake's token outside
# the intake), which gets the same 401 whatever it sends: a few show it for each operation.
REFUSED_EXAMPLES = 5
INTAKE_PATHS = "/v1/hr/"


def examples_for(caller: str, path: str) -> int:
    refused = caller == "anonymous" or (caller == "intake" and not path.startswith(INTAKE_PATHS))
    return REFUSED_EXAMPLES if refused else EXAMPLES


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzz(
    spec: dict[str, Any],
    base_url: str,
    who: str,
    headers: dict[str, str],
    recording: RecordingClient,
) -> tuple[int, list[str]]:
    """Run every operation; return how many calls were made and what failed (one line each)."""
    schema = schemathesis.openapi.from_dict(spec)
    calls = [0]
    failures: list[str] = []

    def checked(checks: list[Callable[..., Any]]) -> Callable[[Any], None]:
        def call(case: Any) -> None:
            calls[0] += 1
            started = len(recording.started)
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            case.validate_response(response, checks=checks)
            if case.path == "/v1/hr/events" and response.status_code >= 400:
                assert recording.started[started:] == [], "a refused batch reached Temporal"

        return call

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            negative = mode is GenerationMode.NEGATIVE
            call = checked([*CHECKS, negative_data_rejection] if negative else CHECKS)
            run = hypothesis.seed(SEED)(
                hypothesis.settings(
                    max_examples=examples_for(who, operation.path),
                    deadline=None,
                    database=None,
                    # No shrinking: the first failing case is reported as generated, in bounded time.
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )(hypothesis.given(case=operation.as_strategy(generation_mode=mode))(call))
            )
            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                continue  # nothing to make invalid (an operation without inputs)
            except Exception as err:  # a check failed: note it, go on with the other operations
                failures.append(f"{operation.label} [{mode.value}]: {err}"[:1500])
    return calls[0], failures


@pytest.mark.parametrize("caller", ["intake", "person", "anonymous"])
async def test_fuzzing_from_the_openapi_document_finds_nothing(
    served: str, issuer: Issuer, recording: RecordingClient, caller: str
) -> None:
    headers = {
        "intake": INTAKE,
        "person": await issuer.auth(ADMIN) if caller == "person" else {},
        "anonymous": {},
    }[caller]
    async with httpx.AsyncClient(base_url=served) as http:
        spec = (await http.get("/openapi.json")).json()
    calls, failures = await asyncio.to_thread(fuzz, spec, served, caller, headers, recording)
    assert not failures, "\n".join(failures)
    # About 1,560 calls as the administrator, 420 as the intake, 390 with no token.
    least = 1200 if caller == "person" else 350
    assert calls >= least, f"only {calls} calls made"
