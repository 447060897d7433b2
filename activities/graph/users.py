"""Graph user activities: ensure (create or converge), enable/disable, manager, sessions, delete."""

from __future__ import annotations

import json
import secrets
import string
from datetime import datetime
from typing import Any

import httpx
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.reference_update import ReferenceUpdate
from msgraph.generated.models.user import User
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.graph import errors as graph_errors
from activities.graph.directory import GraphDirectory
from activities.graph.errors import graph_call
from activities.graph.odata import graph_time, odata_quote, parse_graph_time, segment
from activities.unsendable import UNSENDABLE
from domain.lifecycle.upn import mail_nickname_candidates, upn_for
from domain.provisioning import (
    ActivityNames,
    EnsureGraphUserInput,
    GraphUserRef,
    SetAccountEnabledInput,
    SetManagerInput,
    SetManagerResult,
    UserIdInput,
)

MAX_UPN_CANDIDATES = 50
# The user attributes we own (docs/architecture.md#graph-users), also what we $select to compare.
_MANAGED = (
    "employeeId",
    "givenName",
    "surname",
    "displayName",
    "department",
    "jobTitle",
    "employeeType",
    "employeeHireDate",
    "officeLocation",
    "accountEnabled",
)
_DUPLICATE_UPN = "same value for property userPrincipalName already exists"


def _random_password() -> str:
    # Never logged or returned: the user signs in with the TAP and sets their own credentials.
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*-_=+"
    body = "".join(secrets.choice(alphabet) for _ in range(28))
    return body + secrets.choice(string.ascii_uppercase) + secrets.choice(string.digits) + "!a"


def _desired_attributes(input: EnsureGraphUserInput) -> dict[str, Any]:
    worker = input.worker
    return {
        "employeeId": worker.employee_id,
        "givenName": worker.given_name,
        "surname": worker.family_name,
        "displayName": worker.display_name or worker.employee_id,
        "department": worker.department,
        "jobTitle": worker.job_title,
        "employeeType": worker.employment_type.value,
        "employeeHireDate": graph_time(input.hire_date),
        "officeLocation": worker.location,
        "accountEnabled": input.account_enabled,
    }


def _same(current: Any, desired: Any) -> bool:
    if isinstance(current, str) and isinstance(desired, str) and current.endswith("Z"):
        # Timestamps: compare instants, not spellings ("…:00Z" and "…:00.000Z" are the same).
        try:
            return parse_graph_time(current) == parse_graph_time(desired)
        except ValueError:
            pass
    return current == desired


class GraphUsers(GraphDirectory):
    """User side effects; each looks up before it writes, so a retry is safe."""

    @activity.defn(name=ActivityNames.GRAPH_ENSURE_USER)
    async def ensure_user(self, input: EnsureGraphUserInput) -> GraphUserRef:
        worker = input.worker
        desired = _desired_attributes(input)
        # A retry after a create that succeeded (but whose answer was lost) must find that user.
        existing = await self._user_by_employee_id(worker.employee_id, list(_MANAGED))
        if existing is not None and existing.get("id"):
            await self._converge(existing, desired)
            return GraphUserRef(
                user_id=existing["id"],
                user_principal_name=existing.get("userPrincipalName") or "",
                created=False,
            )

        candidates = mail_nickname_candidates(
            worker.given_name or "", worker.family_name or "", worker.employee_id
        )
        # Create first and let Graph's uniqueness check say "taken" (a 400): one request per
        # joiner instead of a lookup plus a create, and no race between the two.
        for _, nickname in zip(range(MAX_UPN_CANDIDATES), candidates, strict=False):
            upn = upn_for(nickname, input.upn_domain)
            created = await self._create_user(nickname, upn, desired, input.hire_date)
            if created is not None:
                return created
            # Taken. By this very worker? (An earlier attempt's create that the employeeId lookup
            # did not see yet: Graph replicates with a lag.) Then it is ours, not a clash.
            holders = await self._find_users(
                f"userPrincipalName eq {odata_quote(upn)}",
                ["id", "userPrincipalName", *_MANAGED],
                f"look up holder of UPN {upn}",
            )
            holder = holders[0] if holders else {}
            if holder.get("employeeId") == worker.employee_id and holder.get("id"):
                await self._converge(holder, desired)
                return GraphUserRef(user_id=holder["id"], user_principal_name=upn, created=False)
        raise ApplicationError(
            f"no free UPN among the first {MAX_UPN_CANDIDATES} candidates for {worker.employee_id}",
            type="UpnExhausted",
            non_retryable=True,
        )

    async def _create_user(
        self, nickname: str, upn: str, desired: dict[str, Any], hire_date: datetime
    ) -> GraphUserRef | None:
        user = User(
            account_enabled=desired["accountEnabled"],
            display_name=desired["displayName"],
            mail_nickname=nickname,
            user_principal_name=upn,
            password_profile=PasswordProfile(
                password=_random_password(), force_change_password_next_sign_in=True
            ),
            employee_id=desired["employeeId"],
            given_name=desired["givenName"],
            surname=desired["surname"],
            department=desired["department"],
            job_title=desired["jobTitle"],
            employee_type=desired["employeeType"],
            employee_hire_date=hire_date,
            office_location=desired["officeLocation"],
        )
        call = f"create user {desired['employeeId']} as {upn}"
        try:
            created = await self._send_for_json(
                self._client.users.to_post_request_information(user)
            )
        except ODataError as err:
            duplicate = _DUPLICATE_UPN in graph_errors.graph_message(err)
            if err.response_status_code == 400 and duplicate:
                return None  # someone else's UPN: the next candidate is just as deterministic
            raise graph_errors.to_application_error(err, call) from None
        except (httpx.TransportError, *UNSENDABLE) as err:
            raise graph_errors.to_application_error(err, call) from None
        if not created.get("id"):
            raise ApplicationError(f"{call}: Graph returned no user", type="GraphBadResponse")
        return GraphUserRef(
            user_id=created["id"],
            user_principal_name=created.get("userPrincipalName") or upn,
            created=True,
        )

    async def _converge(self, current: dict[str, Any], desired: dict[str, Any]) -> None:
        """PATCH only the attributes that differ (a no-op re-run sends no write)."""
        changes = {k: v for k, v in desired.items() if not _same(current.get(k), v)}
        if changes:
            user_id = current.get("id") or ""
            await self._patch_user(user_id, changes, f"update user {user_id}")

    async def _patch_user(self, user_id: str, changes: dict[str, Any], call: str) -> None:
        # Sent as raw JSON: the SDK's models drop None, and clearing an attribute needs `null`.
        request = RequestInformation(Method.PATCH, f"{self._root}/users/{segment(user_id)}")
        request.headers.try_add("Content-Type", "application/json")
        request.content = json.dumps(changes).encode()
        with graph_call(call):
            await self._adapter.send_no_response_content_async(request, {"XXX": ODataError})

    @activity.defn(name=ActivityNames.GRAPH_SET_ACCOUNT_ENABLED)
    async def set_account_enabled(self, input: SetAccountEnabledInput) -> None:
        await self._patch_user(
            input.user_id,
            {"accountEnabled": input.enabled},
            f"set accountEnabled={input.enabled} on user {input.user_id}",
        )

    @activity.defn(name=ActivityNames.GRAPH_SET_MANAGER)
    async def set_manager(self, input: SetManagerInput) -> SetManagerResult:
        manager = await self._manager(input.manager_employee_id)
        ref = ReferenceUpdate(odata_id=f"{self._root}/users/{segment(manager.user_id)}")
        call = f"set manager of user {input.user_id}"
        try:
            await self._client.users.by_user_id(input.user_id).manager.ref.put(ref)
        except ODataError as err:
            if err.response_status_code == 404:
                # Perhaps our cached manager id is stale: forget it, the retry looks up afresh.
                self._managers.pop(input.manager_employee_id, None)
                raise ApplicationError(f"{call}: not found", type="GraphNotFound") from None
            raise graph_errors.to_application_error(err, call) from None
        except (httpx.TransportError, *UNSENDABLE) as err:
            raise graph_errors.to_application_error(err, call) from None
        return SetManagerResult(manager_user_id=manager.user_id)

    @activity.defn(name=ActivityNames.GRAPH_REVOKE_SIGN_IN_SESSIONS)
    async def revoke_sign_in_sessions(self, input: UserIdInput) -> None:
        with graph_call(f"revoke sign-in sessions of user {input.user_id}"):
            await self._client.users.by_user_id(input.user_id).revoke_sign_in_sessions.post()

    @activity.defn(name=ActivityNames.GRAPH_DELETE_USER)
    async def delete_user(self, input: UserIdInput) -> None:
        try:
            await self._client.users.by_user_id(input.user_id).delete()
        except ODataError as err:
            if err.response_status_code == 404:
                return  # already gone: the goal state
            raise graph_errors.to_application_error(err, f"delete user {input.user_id}") from None
        except (httpx.TransportError, *UNSENDABLE) as err:
            raise graph_errors.to_application_error(err, f"delete user {input.user_id}") from None
