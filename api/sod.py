"""Separation-of-duties violations found after the fact (`/v1/sod`): the list with each one's
state, and the decisions on an exception a rule's remediation asks for.

A move checks the person at once and a schedule checks everyone (workflows/detective/sod_checks.py);
each violation's remediation is the run `sod-violation-{rule}-{employee}`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from api.access_actions import act_on_run, actor_of
from api.access_models import DecisionBody
from api.access_problems import UNAUTHENTICATED, UNCONFIGURED, problem_responses
from api.access_services import (
    AUTHENTICATED,
    CallerDep,
    RequestIdPath,
    StoreDep,
    documented_body,
    json_body,
    services_of,
)
from domain.access.request import DecideInput
from domain.detective.sod_contract import SodContract, SodDecisionAnswer
from domain.detective.sod_violations import SodViolation, ViolationStatus

router = APIRouter(prefix="/v1/sod", tags=["Separation of duties"], dependencies=AUTHENTICATED)


class ViolationList(BaseModel):
    violations: list[SodViolation]
    count: int


@router.get(
    "/violations",
    response_model=ViolationList,
    summary="SoD violations and their state",
    description="People holding both sides of an SoD rule through any mix of grants, found by a "
    "move's check or the scheduled scan, with what the remediation did. Auditors and "
    "administrators see everyone's; others their own.",
    responses=problem_responses(s401=UNAUTHENTICATED, s422="Invalid query", s503=UNCONFIGURED),
)
async def list_violations(
    request: Request,
    caller: CallerDep,
    store: StoreDep,
    status: Annotated[ViolationStatus | None, Query()] = None,
    employee_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> ViolationList:
    admins = services_of(request).policy.access.administrators
    if not (caller.is_auditor or caller.employee_id in admins):
        employee_id = caller.employee_id
    found = await asyncio.to_thread(
        store.list_sod_violations, status=status, employee_id=employee_id, limit=limit
    )
    return ViolationList(violations=found, count=len(found))


@router.post(
    "/violations/{remediation_id}/decision",
    response_model=SodDecisionAnswer,
    summary="Approve or deny an SoD exception",
    description="For an approver of the exception's current stage; never the person it is for. "
    "Approved, the violation is excepted until the rule's exception duration ends, then checked "
    "again; denied, the newest grant is removed.",
    responses=problem_responses(
        s401=UNAUTHENTICATED,
        s403="Not an approver of the current stage",
        s404="No such remediation",
        s409="Nothing waits for a decision",
        s422="Malformed body",
    ),
    openapi_extra=documented_body(DecisionBody),
)
async def decide_exception(
    remediation_id: RequestIdPath,
    body: Annotated[DecisionBody, json_body(DecisionBody)],
    request: Request,
    caller: CallerDep,
) -> SodDecisionAnswer:
    actor = actor_of(caller)
    update = DecideInput(actor=actor, decision=body.decision, comment=body.comment)
    return await act_on_run(
        request,
        remediation_id,
        actor,
        SodContract.UPDATE_DECIDE,
        update,
        (SodContract.REMEDIATION_ID_PREFIX,),
        result_type=SodDecisionAnswer,
    )
