"""Privileged access (`/v1/pim`): my eligible roles, activate, my activations, end or extend one,
and approvals waiting for me. Eligibility management is in api/pim_eligibilities.py.

The API checks what needs no knowledge of the person: the role exists, and the ask fits its
settings (MFA from the token's `amr`, justification, ticket format, duration, start), so a
refusal is immediate and names the rule. Eligibility, SoD and approval belong to the
activation's workflow; its outcome shows in the activation's status and story.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.access_actions import act_on_run, actor_of
from api.access_models import DecisionBody, RequestSummary
from api.access_problems import (
    NOT_AN_IDENTITY,
    UNAUTHENTICATED,
    UNCONFIGURED,
    invalid_request,
    problem_responses,
    temporal_unavailable,
)
from api.access_requests import find_request_view, may_see_request
from api.access_services import (
    AUTHENTICATED,
    CallerDep,
    RequestIdPath,
    StoreDep,
    documented_body,
    json_body,
    services_of,
    temporal_of,
)
from api.caller import Caller
from api.pim_models import (
    ActivationAccepted,
    ActivationList,
    AlertList,
    DeactivateBody,
    EligibleRole,
    EligibleRoles,
    ExtendActivationBody,
    NewActivation,
    RoleSummary,
)
from api.problems import ProblemException
from domain.access.request import DecideInput, RequestStatus, RequestView, UpdateAnswer
from domain.pim.activation import (
    ActivationInput,
    DeactivateInput,
    EligibilityContract,
    ExtendActivationInput,
    PimContract,
    activation_workflow_id,
    eligibility_key,
)
from domain.pim.alerts import AlertKind
from domain.pim.rules import ActivationAsk, Eligibility, Refusal, activation_refusal
from domain.search_attributes import EMPLOYEE_ID

log = logging.getLogger(__name__)

PIM_PREFIX = "/v1/pim"
TAG_PIM = "Privileged access (PIM)"
ACTIVATION = (PimContract.ID_PREFIX,)
ELIGIBILITY = (EligibilityContract.ID_PREFIX,)

router = APIRouter(prefix=PIM_PREFIX, tags=[TAG_PIM], dependencies=AUTHENTICATED)

ACT_RESPONSES = {
    "s401": UNAUTHENTICATED,
    "s404": "No such activation",
    "s409": "The activation is over, or no longer takes this action",
    "s413": "Body too large",
    "s503": UNCONFIGURED,
}


# ---- roles and eligibility (mine) ----------------------------------------------------------------


@router.get(
    "/roles",
    response_model=list[RoleSummary],
    summary="Privileged roles and what activating each takes",
    responses=problem_responses(s401=UNAUTHENTICATED, s503=UNCONFIGURED),
)
async def list_roles(request: Request) -> list[RoleSummary]:
    roles = services_of(request).policy.pim.roles
    return [RoleSummary.of(rid, role) for rid, role in sorted(roles.items())]


@router.get(
    "/eligible",
    response_model=EligibleRoles,
    summary="Roles I may activate",
    description="The caller's current eligibilities, each with what activating the role takes.",
    responses=problem_responses(s401=UNAUTHENTICATED, s403=NOT_AN_IDENTITY, s503=UNCONFIGURED),
)
async def my_eligible_roles(request: Request, caller: CallerDep, store: StoreDep) -> EligibleRoles:
    roles = services_of(request).policy.pim.roles
    views = await asyncio.to_thread(
        store.list_requests,
        employee_id=caller.employee_id,
        status=RequestStatus.GRANTED.value,
        package_prefix=eligibility_key(""),
        limit=500,
    )
    eligible = [
        EligibleRole(
            role=RoleSummary.of(rid, roles[rid]), eligibility_id=v.request_id, until=v.expires_at
        )
        for v in views
        if v.beneficiary_id == caller.employee_id
        and (rid := v.package_id.removeprefix(eligibility_key(""))) in roles
    ]
    return EligibleRoles(eligible=eligible, count=len(eligible))


# ---- activations ---------------------------------------------------------------------------------


@router.post(
    "/activations",
    status_code=202,
    response_model=ActivationAccepted,
    summary="Activate a privileged role",
    description=(
        "Activates a role the caller is eligible for, for the role's default duration or the one "
        "asked (up to its maximum), now or at `start`. A role may need MFA (the token's `amr` "
        "must name `mfa`: sign in again with MFA), a justification, a ticket number of a given "
        "form, and approval. Refusals that need no knowledge of the person are answered here "
        "(403 for MFA, 422 otherwise, naming the rule); eligibility, SoD and approval show in "
        "the activation's status and story.\n\nSend an `Idempotency-Key` to make retries safe."
    ),
    responses=problem_responses(
        s401=UNAUTHENTICATED,
        s403="The role needs MFA and the token does not show it",
        s413="Body too large",
        s422="Unknown role, or an ask its settings refuse (each named)",
        s503=UNCONFIGURED,
    ),
    openapi_extra=documented_body(NewActivation),
)
async def activate(
    body: Annotated[NewActivation, json_body(NewActivation)],
    request: Request,
    caller: CallerDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> ActivationAccepted:
    services = services_of(request)
    role = services.policy.pim.roles.get(body.role_id)
    if role is None:
        known = ", ".join(sorted(services.policy.pim.roles)) or "none"
        raise invalid_request([f"role_id: there is no privileged role {body.role_id!r} ({known})"])
    now = datetime.now(UTC)
    ask = ActivationAsk(
        employee_id=caller.employee_id,
        role_id=body.role_id,
        duration=body.duration,
        justification=body.justification,
        ticket=body.ticket,
        mfa=caller.mfa,
        start=body.start,
    )
    # Everything but the eligibility, which the workflow reads from Graph.
    covers = Eligibility(
        employee_id=ask.employee_id, role_id=ask.role_id, starts_at=now - timedelta(days=1)
    )
    refused = activation_refusal(role, ask, covers, now)
    if refused is not None:
        if refused.code is Refusal.MFA_REQUIRED:
            raise ProblemException(
                403,
                "MFA required",
                refused.reason,
                errors=[{"field": "token", "message": refused.code.value}],
            )
        raise invalid_request([f"{_field(refused.code)}: {refused.reason}"])
    key = f"{caller.employee_id}:{idempotency_key}" if idempotency_key else uuid.uuid4().hex
    activation_id = activation_workflow_id(caller.employee_id, body.role_id, key)
    try:
        await temporal_of(request).start_workflow(
            PimContract.WORKFLOW,
            ActivationInput(ask=ask, submitted_at=now),
            id=activation_id,
            task_queue=services.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(EMPLOYEE_ID, caller.employee_id)]
            ),
            static_summary=f"Role activation: {body.role_id} for {caller.employee_id}",
        )
    except WorkflowAlreadyStartedError:
        pass  # the same key again, after the run closed: answer with that run
    except (RPCError, RuntimeError) as err:
        log.warning("Temporal refused activation %s: %s", activation_id, err)
        raise temporal_unavailable(str(err)) from err
    view = await find_request_view(services, temporal_of(request), activation_id)
    status = view.status if view is not None else RequestStatus.SUBMITTED
    return ActivationAccepted(
        activation_id=activation_id, status=status, links=_links(activation_id)
    )


def _field(code: Refusal) -> str:
    return {
        Refusal.JUSTIFICATION_REQUIRED: "justification",
        Refusal.TICKET_REQUIRED: "ticket",
        Refusal.TICKET_FORMAT: "ticket",
        Refusal.TOO_LONG: "duration",
        Refusal.BAD_START: "start",
    }.get(code, "role_id")


def _links(activation_id: str) -> dict[str, str]:
    base = f"{PIM_PREFIX}/activations/{activation_id}"
    return {"self": base, "deactivate": f"{base}/deactivate", "extension": f"{base}/extension"}


@router.get(
    "/activations",
    response_model=ActivationList,
    summary="My role activations",
    description="The caller's activations, newest first; `status=granted` lists the active ones.",
    responses=problem_responses(s401=UNAUTHENTICATED, s422="Invalid query", s503=UNCONFIGURED),
)
async def my_activations(
    caller: CallerDep,
    store: StoreDep,
    status: Annotated[RequestStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ActivationList:
    views = await asyncio.to_thread(
        store.list_requests,
        employee_id=caller.employee_id,
        status=status.value if status else None,
        package_prefix="pim:",
        limit=limit,
    )
    found = [RequestSummary.of(v) for v in views]
    return ActivationList(activations=found, count=len(found))


@router.get(
    "/activations/{activation_id}",
    response_model=RequestView,
    summary="One activation and its story",
    responses=problem_responses(
        s401=UNAUTHENTICATED, s404="No such activation visible to the caller"
    ),
)
async def get_activation(
    activation_id: RequestIdPath, request: Request, caller: CallerDep
) -> RequestView:
    return await visible_run(request, caller, activation_id, ACTIVATION)


@router.post(
    "/activations/{activation_id}/deactivate",
    response_model=UpdateAnswer,
    summary="End an activation now",
    description="The person holding the role, or an administrator, ends it before its time.",
    responses=problem_responses(**ACT_RESPONSES, s403="Not the holder nor an administrator"),
    openapi_extra=documented_body(DeactivateBody, required=False),
)
async def deactivate(
    activation_id: RequestIdPath,
    request: Request,
    caller: CallerDep,
    body: Annotated[DeactivateBody | None, json_body(DeactivateBody, optional=True)],
) -> UpdateAnswer:
    actor = actor_of(caller)
    update = DeactivateInput(actor=actor, reason=body.reason if body else "")
    return await act_on_run(
        request, activation_id, actor, PimContract.UPDATE_DEACTIVATE, update, ACTIVATION
    )


@router.post(
    "/activations/{activation_id}/extension",
    response_model=UpdateAnswer,
    summary="Extend an active role",
    description="Moves the end, within the role's maximum from the activation's start.",
    responses=problem_responses(
        **ACT_RESPONSES, s403="Not the holder", s422="A new end the role does not allow"
    ),
    openapi_extra=documented_body(ExtendActivationBody),
)
async def extend_activation(
    activation_id: RequestIdPath,
    body: Annotated[ExtendActivationBody, json_body(ExtendActivationBody)],
    request: Request,
    caller: CallerDep,
) -> UpdateAnswer:
    if (body.duration is None) == (body.new_end is None):
        raise invalid_request(["duration: give either a duration or a new_end"])
    actor = actor_of(caller)
    update = ExtendActivationInput(
        actor=actor, duration=body.duration, new_end=body.new_end, justification=body.justification
    )
    return await act_on_run(
        request, activation_id, actor, PimContract.UPDATE_EXTEND, update, ACTIVATION
    )


@router.post(
    "/activations/{activation_id}/decision",
    response_model=UpdateAnswer,
    summary="Approve or deny an activation",
    description="For an approver of the activation's current stage; never the person activating.",
    responses=problem_responses(
        **ACT_RESPONSES, s403="Not an approver of the current stage", s422="Malformed body"
    ),
    openapi_extra=documented_body(DecisionBody),
)
async def decide_activation(
    activation_id: RequestIdPath,
    body: Annotated[DecisionBody, json_body(DecisionBody)],
    request: Request,
    caller: CallerDep,
) -> UpdateAnswer:
    actor = actor_of(caller)
    update = DecideInput(actor=actor, decision=body.decision, comment=body.comment)
    prefixes = (*ACTIVATION, *ELIGIBILITY)  # an eligibility's extension is decided alike
    return await act_on_run(
        request, activation_id, actor, PimContract.UPDATE_DECIDE, update, prefixes
    )


@router.get(
    "/approvals",
    response_model=ActivationList,
    summary="Activations and eligibility extensions awaiting my decision",
    responses=problem_responses(s401=UNAUTHENTICATED, s503=UNCONFIGURED),
)
async def my_pim_approvals(caller: CallerDep, store: StoreDep) -> ActivationList:
    views = await asyncio.to_thread(store.awaiting_decision, caller.employee_id)
    found = [RequestSummary.of(v) for v in views if v.package_id.startswith("pim")]
    return ActivationList(activations=found, count=len(found))


# ---- alerts -------------------------------------------------------------------------------------


@router.get(
    "/alerts",
    response_model=AlertList,
    summary="PIM alerts (auditors and administrators)",
    description=(
        "What the scheduled PIM alert scan found: roles held outside Tenure, permanent active "
        "assignments, too many holders, activations too frequent, eligible people who never "
        "activate. An alert stays open while its cause persists and is raised again only if it "
        "comes back after being resolved. `all=true` lists resolved ones too."
    ),
    responses=problem_responses(s401=UNAUTHENTICATED, s403="Not an auditor", s422="Invalid query"),
)
async def list_alerts(
    request: Request,
    caller: CallerDep,
    store: StoreDep,
    kind: Annotated[AlertKind | None, Query()] = None,
    all: Annotated[bool, Query(description="Resolved alerts too.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AlertList:
    if not (
        caller.is_auditor or caller.employee_id in services_of(request).policy.access.administrators
    ):
        raise ProblemException(
            403, "Not allowed", "only auditors and administrators read PIM alerts"
        )
    alerts = await asyncio.to_thread(store.list_alerts, open_only=not all, kind=kind, limit=limit)
    return AlertList(alerts=alerts, count=len(alerts))


# ---- helpers -------------------------------------------------------------------------------------


async def visible_run(
    request: Request, caller: Caller, run_id: str, prefixes: tuple[str, ...]
) -> RequestView:
    services = services_of(request)
    view = None
    if run_id.startswith(prefixes):
        view = await find_request_view(services, temporal_of(request), run_id)
    if view is None or not may_see_request(caller, view, services.policy):
        raise ProblemException(404, "Not Found", f"There is no PIM run {run_id!r}.")
    return view
