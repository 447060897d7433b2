"""Eligibility management (`/v1/pim/eligibilities`): administrators make people eligible for a
privileged role and remove it; the person or an administrator extends it; everyone reads their
own (administrators and auditors read everyone's). Each eligibility is the run
`pim-eligibility-{employee}-{role}` (workflows/pim/eligibility.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.access_actions import act_on_run, actor_of
from api.access_models import RequestSummary
from api.access_problems import (
    UNAUTHENTICATED,
    UNCONFIGURED,
    invalid_request,
    problem_responses,
    temporal_unavailable,
)
from api.access_services import (
    AUTHENTICATED,
    CallerDep,
    StoreDep,
    documented_body,
    json_body,
    services_of,
    temporal_of,
)
from api.caller import Caller
from api.pim import ACT_RESPONSES, ELIGIBILITY, PIM_PREFIX, TAG_PIM, visible_run
from api.pim_models import (
    ActivationAccepted,
    EligibilityList,
    ExtendEligibilityBody,
    NewEligibility,
    RemoveEligibilityBody,
)
from api.problems import ProblemException
from domain.access.request import RequestStatus, RequestView, UpdateAnswer
from domain.pim.activation import (
    EligibilityAssignInput,
    EligibilityContract,
    ExtendEligibilityAsk,
    RemoveEligibilityAsk,
    eligibility_key,
    eligibility_workflow_id,
)
from domain.search_attributes import EMPLOYEE_ID

router = APIRouter(prefix=PIM_PREFIX, tags=[TAG_PIM], dependencies=AUTHENTICATED)


EmployeeIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
RoleIdPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]


@router.post(
    "/eligibilities",
    status_code=202,
    response_model=ActivationAccepted,
    summary="Make someone eligible for a role (administrators)",
    description=(
        "Writes the eligibility to Graph with its end: the one given, within the role's "
        "eligibility expiry, or the role's default. Permanent only where the role allows it."
    ),
    responses=problem_responses(
        s401=UNAUTHENTICATED,
        s403="Not an administrator",
        s409="Already eligible: extend the eligibility instead",
        s422="Unknown role, or an end the role does not allow",
        s503=UNCONFIGURED,
    ),
    openapi_extra=documented_body(NewEligibility),
)
async def assign_eligibility(
    body: Annotated[NewEligibility, json_body(NewEligibility)],
    request: Request,
    caller: CallerDep,
) -> ActivationAccepted:
    services = services_of(request)
    _require_admin(caller, services.policy.access.administrators)
    if body.role_id not in services.policy.pim.roles:
        raise invalid_request([f"role_id: there is no privileged role {body.role_id!r}"])
    run_id = eligibility_workflow_id(body.employee_id, body.role_id)
    client = temporal_of(request)
    try:
        await client.start_workflow(
            EligibilityContract.WORKFLOW,
            EligibilityAssignInput(
                employee_id=body.employee_id,
                role_id=body.role_id,
                actor=actor_of(caller),
                until=body.until,
                permanent=body.permanent,
                justification=body.justification,
                submitted_at=datetime.now(UTC),
            ),
            id=run_id,
            task_queue=services.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(EMPLOYEE_ID, body.employee_id)]
            ),
            static_summary=f"Eligibility: {body.role_id} for {body.employee_id}",
        )
    except WorkflowAlreadyStartedError:
        raise ProblemException(
            409,
            "Already eligible",
            f"{body.employee_id} already has an eligibility for {body.role_id} ({run_id}): "
            "extend or remove it instead",
        ) from None
    except (RPCError, RuntimeError) as err:
        raise temporal_unavailable(str(err)) from err
    return ActivationAccepted(
        activation_id=run_id,
        status=RequestStatus.SUBMITTED,
        links={"self": f"{PIM_PREFIX}/eligibilities/{body.employee_id}/{body.role_id}"},
    )


@router.get(
    "/eligibilities",
    response_model=EligibilityList,
    summary="Eligibilities (everyone's for administrators and auditors; else mine)",
    responses=problem_responses(s401=UNAUTHENTICATED, s422="Invalid query", s503=UNCONFIGURED),
)
async def list_eligibilities(
    request: Request,
    caller: CallerDep,
    store: StoreDep,
    employee_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[RequestStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> EligibilityList:
    admins = services_of(request).policy.access.administrators
    if not (caller.is_auditor or caller.employee_id in admins):
        employee_id = caller.employee_id
    views = await asyncio.to_thread(
        store.list_requests,
        employee_id=employee_id,
        status=status.value if status else None,
        package_prefix=eligibility_key(""),
        limit=limit,
    )
    found = [RequestSummary.of(v) for v in views]
    return EligibilityList(eligibilities=found, count=len(found))


@router.get(
    "/eligibilities/{employee_id}/{role_id}",
    response_model=RequestView,
    summary="One eligibility and its story",
    responses=problem_responses(
        s401=UNAUTHENTICATED, s404="No such eligibility visible to the caller"
    ),
)
async def get_eligibility(
    employee_id: EmployeeIdPath, role_id: RoleIdPath, request: Request, caller: CallerDep
) -> RequestView:
    run_id = eligibility_workflow_id(employee_id, role_id)
    return await visible_run(request, caller, run_id, ELIGIBILITY)


@router.delete(
    "/eligibilities/{employee_id}/{role_id}",
    response_model=UpdateAnswer,
    summary="Remove an eligibility (administrators)",
    responses=problem_responses(**ACT_RESPONSES, s403="Not an administrator"),
    openapi_extra=documented_body(RemoveEligibilityBody, required=False),
)
async def remove_eligibility(
    employee_id: EmployeeIdPath,
    role_id: RoleIdPath,
    request: Request,
    caller: CallerDep,
    body: Annotated[RemoveEligibilityBody | None, json_body(RemoveEligibilityBody, optional=True)],
) -> UpdateAnswer:
    actor = actor_of(caller)
    update = RemoveEligibilityAsk(actor=actor, reason=body.reason if body else "")
    run_id = eligibility_workflow_id(employee_id, role_id)
    return await act_on_run(
        request, run_id, actor, EligibilityContract.UPDATE_REMOVE, update, ELIGIBILITY
    )


@router.post(
    "/eligibilities/{employee_id}/{role_id}/extension",
    response_model=UpdateAnswer,
    summary="Extend an eligibility",
    description="An administrator's extension applies at once; the person's own goes to the "
    "role's approvers (its administrators where it has no approval stages).",
    responses=problem_responses(
        **ACT_RESPONSES,
        s403="Neither the person nor an administrator",
        s422="An end the role does not allow",
    ),
    openapi_extra=documented_body(ExtendEligibilityBody),
)
async def extend_eligibility(
    employee_id: EmployeeIdPath,
    role_id: RoleIdPath,
    body: Annotated[ExtendEligibilityBody, json_body(ExtendEligibilityBody)],
    request: Request,
    caller: CallerDep,
) -> UpdateAnswer:
    actor = actor_of(caller)
    update = ExtendEligibilityAsk(
        actor=actor, until=body.until, permanent=body.permanent, justification=body.justification
    )
    run_id = eligibility_workflow_id(employee_id, role_id)
    return await act_on_run(
        request, run_id, actor, EligibilityContract.UPDATE_EXTEND, update, ELIGIBILITY
    )


def _require_admin(caller: Caller, administrators: list[str]) -> None:
    if not (caller.is_admin or caller.employee_id in administrators):
        raise ProblemException(403, "Not allowed", "only an administrator may manage eligibility")
