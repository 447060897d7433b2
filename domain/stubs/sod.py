"""Detective separation-of-duties activities (implemented by activities/detective/sod.py)."""

from __future__ import annotations

from temporalio import activity

from domain.detective.sod_check import PersonCheck
from domain.detective.sod_contract import (
    CheckPeopleInput,
    CheckPersonInput,
    ListManagedInput,
    ManagedPage,
    PeopleCheck,
    RecordViolationsInput,
    RemoveGrantInput,
    RemoveGrantResult,
    ResolveOwnersInput,
    SodActivityNames,
    SodOwners,
    StartCheckInput,
    StartedRemediations,
    StartRemediationsInput,
)

__all__ = [
    "check_people",
    "check_person",
    "list_managed",
    "record_violations",
    "remove_grant",
    "resolve_owners",
    "start_check",
    "start_remediations",
]


@activity.defn(name=SodActivityNames.CHECK_PERSON)
async def check_person(input: CheckPersonInput) -> PersonCheck:
    raise NotImplementedError


@activity.defn(name=SodActivityNames.CHECK_PEOPLE)
async def check_people(input: CheckPeopleInput) -> PeopleCheck:
    raise NotImplementedError


@activity.defn(name=SodActivityNames.LIST_MANAGED)
async def list_managed(input: ListManagedInput) -> ManagedPage:
    raise NotImplementedError


@activity.defn(name=SodActivityNames.RECORD_VIOLATIONS)
async def record_violations(input: RecordViolationsInput) -> None:
    raise NotImplementedError


@activity.defn(name=SodActivityNames.START_REMEDIATIONS)
async def start_remediations(input: StartRemediationsInput) -> StartedRemediations:
    raise NotImplementedError


@activity.defn(name=SodActivityNames.REMOVE_GRANT)
async def remove_grant(input: RemoveGrantInput) -> RemoveGrantResult:
    raise NotImplementedError


@activity.defn(name=SodActivityNames.RESOLVE_OWNERS)
async def resolve_owners(input: ResolveOwnersInput) -> SodOwners:
    raise NotImplementedError


@activity.defn(name=SodActivityNames.START_CHECK)
async def start_check(input: StartCheckInput) -> None:
    raise NotImplementedError
