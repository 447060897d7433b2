"""Incident response activities (implemented by activities/security/incidents.py)."""

from __future__ import annotations

from temporalio import activity

from domain.lifecycle.identity import RestoreIdentityResult, SuspendIdentityResult
from domain.security.incident import (
    CutOffInput,
    CutOffResult,
    IncidentActivityNames,
    RecordIncidentInput,
    ResolvedPerson,
    ResolvePersonInput,
    RestorePersonInput,
    SecurityContacts,
    SuspendPersonInput,
)

__all__ = [
    "cut_off",
    "record_incident",
    "resolve_person",
    "restore_identity",
    "security_settings",
    "suspend_identity",
]


@activity.defn(name=IncidentActivityNames.RESOLVE_PERSON)
async def resolve_person(input: ResolvePersonInput) -> ResolvedPerson:
    raise NotImplementedError


@activity.defn(name=IncidentActivityNames.SUSPEND_IDENTITY)
async def suspend_identity(input: SuspendPersonInput) -> SuspendIdentityResult:
    raise NotImplementedError


@activity.defn(name=IncidentActivityNames.RESTORE_IDENTITY)
async def restore_identity(input: RestorePersonInput) -> RestoreIdentityResult:
    raise NotImplementedError


@activity.defn(name=IncidentActivityNames.SECURITY_SETTINGS)
async def security_settings() -> SecurityContacts:
    raise NotImplementedError


@activity.defn(name=IncidentActivityNames.RECORD_INCIDENT)
async def record_incident(input: RecordIncidentInput) -> None:
    raise NotImplementedError


@activity.defn(name=IncidentActivityNames.CUT_OFF)
async def cut_off(input: CutOffInput) -> CutOffResult:
    raise NotImplementedError
