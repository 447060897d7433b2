"""Only people Tenure knows may use the access API: a valid token is not enough.

A directory can hold accounts that are not Tenure identities (service accounts, people HR never
sent, someone whose hire is still only an event): their tokens verify, yet nobody should approve,
request or read as them. The gate asks Temporal once per token whether `identity-{employee_id}`
runs and is hired (stage `pre_hire` or `active`, read from its LifecycleStage search attribute by a
describe, which needs no worker), and remembers the answer: a yes for at most `KNOWN_TTL_S` (and
never past the token's expiry), so a leaver's still-valid token stops working within minutes; a no
for `UNKNOWN_TTL_S`, so someone hired a moment later gets in soon.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.access_problems import temporal_unavailable
from api.caller import Caller
from api.problems import ProblemException
from domain.lifecycle.events import EMPLOYEE_ID_PATTERN, identity_workflow_id
from domain.lifecycle.identity import LifecycleStage
from domain.search_attributes import LIFECYCLE_STAGE

KNOWN_TTL_S = 300.0
UNKNOWN_TTL_S = 30.0
MAX_ENTRIES = 10_000
# A describe waits at most this long; past it the caller gets a 503 to retry.
_RPC_TIMEOUT = timedelta(seconds=5)
# What an identity's employee id may be; anything else is nobody's.
_EMPLOYEE_ID = re.compile(EMPLOYEE_ID_PATTERN)
HIRED = frozenset({LifecycleStage.PRE_HIRE.value, LifecycleStage.ACTIVE.value})


@dataclass(frozen=True)
class _Verdict:
    refusal: str | None  # None: known and hired
    until: float  # monotonic


class KnownCallers:
    """Per-process cache of who is a hired Tenure identity, by token."""

    def __init__(
        self,
        *,
        known_ttl_s: float = KNOWN_TTL_S,
        unknown_ttl_s: float = UNKNOWN_TTL_S,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._known_ttl_s = known_ttl_s
        self._unknown_ttl_s = unknown_ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._wall_clock = wall_clock
        self._verdicts: OrderedDict[str, _Verdict] = OrderedDict()
        self.lookups = 0  # Temporal round trips made, for tests and metrics

    async def require(self, temporal: Client, caller: Caller, token: str) -> None:
        """Return if the caller is a hired identity; else a 403 naming why (503 if unknowable)."""
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        now = self._clock()
        verdict = self._verdicts.get(key)
        if verdict is None or verdict.until <= now:
            refusal = await self._look_up(temporal, caller.employee_id)
            verdict = _Verdict(refusal=refusal, until=now + self._ttl(caller, refusal))
            self._remember(key, verdict)
        if verdict.refusal is not None:
            raise ProblemException(403, "Not a Tenure identity", verdict.refusal)

    def _ttl(self, caller: Caller, refusal: str | None) -> float:
        if refusal is not None:
            return self._unknown_ttl_s
        ttl = self._known_ttl_s
        if caller.token_expires_at is not None:
            ttl = min(ttl, max(caller.token_expires_at - self._wall_clock(), 0.0))
        return ttl

    def _remember(self, key: str, verdict: _Verdict) -> None:
        self._verdicts[key] = verdict
        self._verdicts.move_to_end(key)
        while len(self._verdicts) > self._max_entries:
            self._verdicts.popitem(last=False)

    async def _look_up(self, temporal: Client, employee_id: str) -> str | None:
        who = f"The token's employee id {employee_id!r}"
        if not _EMPLOYEE_ID.fullmatch(employee_id):
            return f"{who} is not one Tenure could manage."
        self.lookups += 1
        try:
            described = await temporal.get_workflow_handle(
                identity_workflow_id(employee_id)
            ).describe(rpc_timeout=_RPC_TIMEOUT)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return f"{who} is not an identity Tenure manages."
            raise _unknowable(str(err)) from err
        except RuntimeError as err:
            raise _unknowable(str(err)) from err
        if described.status != WorkflowExecutionStatus.RUNNING:
            return f"{who} has no running identity in Tenure."
        stage = described.typed_search_attributes.get(LIFECYCLE_STAGE)
        if stage not in HIRED:
            shown = stage or "unknown"
            return f"{who} is not hired in Tenure (stage {shown})."
        return None


def _unknowable(cause: str) -> ProblemException:
    return temporal_unavailable(f"cannot tell whether the caller is a Tenure identity: {cause}")
