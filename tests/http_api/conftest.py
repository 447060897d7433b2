"""One Temporal dev server, stand-in request workflow worker, record store, token issuer and API for
the HTTP API tests (shared by the package: each start costs seconds). The API is reachable in
process (`api`) and over real HTTP through uvicorn with its production limits (`served`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.settings import ApiSettings
from audit.store import AccessRecordStore
from domain.lifecycle.identity import LifecycleStage
from tests.support.access_api import (
    INTAKE_TOKEN,
    LEAVER,
    OUTSIDER,
    PEOPLE,
    ROLES,
    asgi_client,
)
from tests.support.asgi_server import serving
from tests.support.fake_access_request import FakeAccessRequestWorkflow
from tests.support.identities import IdentityStandIn, start_identities
from tests.support.recording_client import RecordingClient
from tests.support.temporal_dev import temporal_dev_server
from tests.support.token_issuer import Issuer, token_issuer


@pytest.fixture(scope="package")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    async with temporal_dev_server() as env:
        # The test people are hired identities (the API lets no one else in).
        await start_identities(env.client, PEOPLE)
        await start_identities(env.client, [LEAVER], stage=LifecycleStage.DISABLED)
        yield env


SIEM_TOKEN = "siem-test-token"


@pytest.fixture(scope="package")
def task_queue() -> str:
    return f"access-api-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="package")
async def worker(temporal: WorkflowEnvironment, task_queue: str) -> AsyncIterator[None]:
    async with Worker(
        temporal.client,
        task_queue=task_queue,
        workflows=[FakeAccessRequestWorkflow, IdentityStandIn],
    ):
        yield


@pytest.fixture(scope="package")
def store(tmp_path_factory: pytest.TempPathFactory) -> AccessRecordStore:
    return AccessRecordStore(tmp_path_factory.mktemp("record") / "access-record.db")


@pytest.fixture(scope="package")
async def issuer() -> AsyncIterator[Issuer]:
    # OUTSIDER is in the directory (so the issuer signs their tokens) but no Tenure identity.
    async with token_issuer([*PEOPLE, OUTSIDER, LEAVER], ROLES) as tokens:
        yield tokens


@pytest.fixture(scope="package")
def recording(temporal: WorkflowEnvironment) -> RecordingClient:
    return RecordingClient(temporal.client)


@pytest.fixture(scope="package")
def app(
    recording: RecordingClient,
    worker: None,
    task_queue: str,
    store: AccessRecordStore,
    issuer: Issuer,
) -> FastAPI:
    settings = ApiSettings(
        intake_token=INTAKE_TOKEN,
        task_queue=task_queue,
        access_record_db=store.path,
        tokens=issuer.settings,
        siem_token=SIEM_TOKEN,
    )
    return create_app(settings, client=recording)  # type: ignore[arg-type]


@pytest.fixture(scope="package")
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as http:
        yield http


@pytest.fixture(scope="package")
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The base URL of the same app served by uvicorn, as `python -m api` serves it."""
    async with serving(app) as url:
        yield url
