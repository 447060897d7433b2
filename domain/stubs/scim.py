"""SCIM 2.0 target-application activities (implemented by activities/scim/activities.py)."""

from __future__ import annotations

from temporalio import activity

from domain.provisioning import (
    ActivityNames,
    EnsureScimUserInput,
    ScimUserKey,
    ScimUserRef,
    SetScimActiveInput,
)

__all__ = ["delete_user", "ensure_user", "set_active"]


@activity.defn(name=ActivityNames.SCIM_ENSURE_USER)
async def ensure_user(input: EnsureScimUserInput) -> ScimUserRef:
    raise NotImplementedError


@activity.defn(name=ActivityNames.SCIM_SET_ACTIVE)
async def set_active(input: SetScimActiveInput) -> None:
    raise NotImplementedError


@activity.defn(name=ActivityNames.SCIM_DELETE_USER)
async def delete_user(input: ScimUserKey) -> None:
    raise NotImplementedError
