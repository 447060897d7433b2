"""Graph activities: every side effect looks up before it writes, so any retry is safe (rule 3)."""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import quote

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.reference_update import ReferenceUpdate
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod,
)
from msgraph.generated.models.user import User
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import (
    SendMailPostRequestBody,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import graph_errors
from activities.graph_client import send_for_json
from activities.graph_errors import graph_call
from domain.provisioning import (
    ActivityNames,
    EmployeeIdInput,
    EnsureGraphUserInput,
    GraphUserRef,
    GroupMembershipInput,
    GroupMembershipResult,
    IssueTapToManagerInput,
    Mailbox,
    SendMailInput,
    SetAccountEnabledInput,
    SetManagerInput,
    SetManagerResult,
    TapIssued,
    UserIdInput,
)
from domain.upn import mail_nickname_candidates, upn_for

MANAGER_CACHE_SECONDS = 300.0
BATCH_LIMIT = 20  # Graph's maximum number of requests in one $batch
MAX_UPN_CANDIDATES = 50
# The user attributes we own (DESIGN.md "What lands in Graph"), also what we $select to compare.
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
_ALREADY_MEMBER = "added object references already exist"


def _odata_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _random_password() -> str:
    # Never logged or returned: the user signs in with the TAP and sets their own credentials.
    alphabet = string.ascii_letters + string.digits + "!@#$%^&*-_=+"
    body = "".join(secrets.choice(alphabet) for _ in range(28))
    return body + secrets.choice(string.ascii_uppercase) + secrets.choice(string.digits) + "!a"


def _graph_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        "employeeHireDate": _graph_time(input.hire_date),
        "officeLocation": worker.location,
        "accountEnabled": input.account_enabled,
    }


def _same(current: Any, desired: Any) -> bool:
    if isinstance(current, str) and isinstance(desired, str) and current.endswith("Z"):
        # Timestamps: compare instants, not spellings ("…:00Z" and "…:00.000Z" are the same).
        try:
            return _parse_graph_time(current) == _parse_graph_time(desired)
        except ValueError:
            pass
    return current == desired


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class ManagerRef:
    user_id: str
    address: str
    display_name: str


class GraphActivities:
    """Graph side effects for the identity workflows; the client is injected by the worker."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client
        self._adapter = client.request_adapter
        # Group display name -> id. Groups live long; a stale id shows up as a 404 and is evicted.
        self._group_ids: dict[str, str] = {}
        # Manager employee id -> (expiry, reference). Every report of a manager needs the same
        # lookup twice (manager reference, TAP mail); a short cache spares Graph both. A stale id
        # (manager deleted and rehired) answers 404 on use and is evicted before the retry.
        self._managers: dict[str, tuple[float, ManagerRef]] = {}
        self._manager_lookups: dict[str, asyncio.Future[ManagerRef]] = {}

    @property
    def _root(self) -> str:
        return self._adapter.base_url.rstrip("/")

    # ---- lookups -------------------------------------------------------------------------------

    async def _find_users(self, filter: str, select: list[str], call: str) -> list[dict[str, Any]]:
        """Users matching a filter, as Graph's JSON (only the $selected properties)."""
        config = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                filter=filter, select=select, top=2
            )
        )
        request = self._client.users.to_get_request_information(request_configuration=config)
        with graph_call(call):
            page = await self._send_for_json(request)
        return list(page.get("value") or [])

    async def _user_by_employee_id(
        self, employee_id: str, select: list[str]
    ) -> dict[str, Any] | None:
        users = await self._find_users(
            f"employeeId eq {_odata_quote(employee_id)}",
            ["id", "userPrincipalName", *select],
            f"look up user by employeeId {employee_id}",
        )
        return users[0] if users else None

    async def _manager(self, employee_id: str) -> ManagerRef:
        cached = self._managers.get(employee_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        # Many reports of one manager start together: one lookup serves them all.
        lookup = self._manager_lookups.get(employee_id)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up_manager(employee_id))
            self._manager_lookups[employee_id] = lookup
            lookup.add_done_callback(lambda _: self._manager_lookups.pop(employee_id, None))
        return await asyncio.shield(lookup)

    async def _look_up_manager(self, employee_id: str) -> ManagerRef:
        manager = await self._user_by_employee_id(employee_id, ["mail", "displayName"])
        if manager is None or not manager.get("id"):
            # The manager's own joiner may still be running: worth retrying.
            raise ApplicationError(
                f"manager {employee_id} is not provisioned in Graph yet",
                type="ManagerNotProvisioned",
            )
        ref = ManagerRef(
            user_id=manager["id"],
            address=manager.get("mail") or manager.get("userPrincipalName") or "",
            display_name=manager.get("displayName") or "",
        )
        self._managers[employee_id] = (time.monotonic() + MANAGER_CACHE_SECONDS, ref)
        return ref

    # ---- users ---------------------------------------------------------------------------------

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
                f"userPrincipalName eq {_odata_quote(upn)}",
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
        except httpx.TransportError as err:
            raise graph_errors.to_application_error(err, call) from None
        if not created.get("id"):
            raise ApplicationError(f"{call}: Graph returned no user", type="GraphBadResponse")
        return GraphUserRef(
            user_id=created["id"],
            user_principal_name=created.get("userPrincipalName") or upn,
            created=True,
        )

    async def _send_for_json(self, request: RequestInformation) -> dict[str, Any]:
        return await send_for_json(self._adapter, request)

    async def _converge(self, current: dict[str, Any], desired: dict[str, Any]) -> None:
        """PATCH only the attributes that differ (a no-op re-run sends no write)."""
        changes = {k: v for k, v in desired.items() if not _same(current.get(k), v)}
        if changes:
            user_id = current.get("id") or ""
            await self._patch_user(user_id, changes, f"update user {user_id}")

    async def _patch_user(self, user_id: str, changes: dict[str, Any], call: str) -> None:
        # Sent as raw JSON: the SDK's models drop None, and clearing an attribute needs `null`.
        request = RequestInformation(Method.PATCH, f"{self._root}/users/{quote(user_id)}")
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
        ref = ReferenceUpdate(odata_id=f"{self._root}/users/{manager.user_id}")
        call = f"set manager of user {input.user_id}"
        try:
            await self._client.users.by_user_id(input.user_id).manager.ref.put(ref)
        except ODataError as err:
            if err.response_status_code == 404:
                # Perhaps our cached manager id is stale: forget it, the retry looks up afresh.
                self._managers.pop(input.manager_employee_id, None)
                raise ApplicationError(f"{call}: not found", type="GraphNotFound") from None
            raise graph_errors.to_application_error(err, call) from None
        except httpx.TransportError as err:
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
        except httpx.TransportError as err:
            raise graph_errors.to_application_error(err, f"delete user {input.user_id}") from None

    # ---- groups --------------------------------------------------------------------------------

    async def _batch(self, requests: list[dict[str, Any]], call: str) -> dict[str, dict[str, Any]]:
        """POST one $batch (built by hand: the SDK's batch helpers mangle URLs and bodies)."""
        request = RequestInformation(Method.POST, f"{self._root}/$batch")
        request.headers.try_add("Content-Type", "application/json")
        request.content = json.dumps({"requests": requests}).encode()
        with graph_call(call):
            raw = await self._adapter.send_primitive_async(request, "bytes", {"XXX": ODataError})
        responses = json.loads(raw or b"{}").get("responses") or []
        return {str(r.get("id")): r for r in responses}

    async def _resolve_groups(self, names: list[str]) -> dict[str, str]:
        missing = [n for n in dict.fromkeys(names) if n not in self._group_ids]
        for chunk in _chunks(missing, BATCH_LIMIT):
            requests = [
                {
                    "id": str(i),
                    "method": "GET",
                    "url": f"/groups?$filter=displayName eq {_odata_quote(name)}&$select=id",
                }
                for i, name in enumerate(chunk)
            ]
            answers = await self._batch(requests, "resolve groups by displayName")
            failed: list[dict[str, Any]] = []
            for i, name in enumerate(chunk):
                answer = answers.get(str(i), {})
                if int(answer.get("status", 0)) != 200:
                    failed.append(answer)
                    continue
                found = (answer.get("body") or {}).get("value") or []
                if not found:
                    raise ApplicationError(
                        f"group {name!r} does not exist in Graph",
                        type="GroupNotFound",
                        non_retryable=True,
                    )
                if len(found) > 1:
                    raise ApplicationError(
                        f"{len(found)} groups are named {name!r}; refusing to guess",
                        type="GroupAmbiguous",
                        non_retryable=True,
                    )
                self._group_ids[name] = found[0]["id"]
            if failed:
                raise _sub_response_error("resolve groups by displayName", failed)
        return {name: self._group_ids[name] for name in names}

    async def group_member_employee_ids(self, name: str) -> list[str]:
        """Employee ids of a group's enabled members (approvers named by group), every page."""
        group_id = (await self._resolve_groups([name]))[name]
        url: str | None = (
            f"{self._root}/groups/{group_id}/members?$select=id,employeeId,accountEnabled&$top=100"
        )
        found: list[str] = []
        while url:
            request = RequestInformation(Method.GET, url)
            with graph_call(f"list members of group {name!r}"):
                page = await self._send_for_json(request)
            for member in page.get("value") or []:
                if member.get("employeeId") and member.get("accountEnabled", True):
                    found.append(member["employeeId"])
            url = page.get("@odata.nextLink")
        return found

    @activity.defn(name=ActivityNames.GRAPH_ENSURE_GROUP_MEMBERSHIPS)
    async def ensure_group_memberships(self, input: GroupMembershipInput) -> GroupMembershipResult:
        group_ids = await self._resolve_groups(input.groups)
        result = GroupMembershipResult(group_ids=group_ids)
        member_ref = {"@odata.id": f"{self._root}/directoryObjects/{input.user_id}"}
        verb = "add" if input.present else "remove"
        call = f"{verb} user {input.user_id} group memberships"
        names = list(group_ids)
        failed: list[dict[str, Any]] = []
        for chunk in _chunks(names, BATCH_LIMIT):
            requests = []
            for i, name in enumerate(chunk):
                gid = group_ids[name]
                if input.present:
                    requests.append(
                        {
                            "id": str(i),
                            "method": "POST",
                            "url": f"/groups/{gid}/members/$ref",
                            "headers": {"Content-Type": "application/json"},
                            "body": member_ref,
                        }
                    )
                else:
                    url = f"/groups/{gid}/members/{input.user_id}/$ref"
                    requests.append({"id": str(i), "method": "DELETE", "url": url})
            answers = await self._batch(requests, call)
            for i, name in enumerate(chunk):
                answer = answers.get(str(i), {"status": 0})
                outcome = self._membership_outcome(answer, input.present)
                if outcome == "changed":
                    result.changed.append(name)
                elif outcome == "unchanged":
                    result.unchanged.append(name)
                else:
                    answer = {**answer, "group": name}
                    if int(answer.get("status", 0)) == 404:
                        self._group_ids.pop(name, None)  # maybe deleted: re-resolve next time
                    failed.append(answer)
        if failed:
            raise _sub_response_error(call, failed)
        return result

    @staticmethod
    def _membership_outcome(answer: dict[str, Any], present: bool) -> str:
        status = int(answer.get("status", 0))
        if status in (200, 204):
            return "changed"
        message = str(((answer.get("body") or {}).get("error") or {}).get("message", ""))
        if present and status == 400 and _ALREADY_MEMBER in message:
            return "unchanged"
        if not present and status == 404:
            return "unchanged"  # not a member (or group gone): membership absent either way
        return "failed"

    # ---- mail and temporary access passes ------------------------------------------------------

    async def _send_mail(self, sender: str, to: str, subject: str, html: str, call: str) -> None:
        body = SendMailPostRequestBody(
            message=Message(
                subject=subject,
                body=ItemBody(content_type=BodyType.Html, content=html),
                to_recipients=[Recipient(email_address=EmailAddress(address=to))],
            ),
            save_to_sent_items=False,
        )
        try:
            await self._client.users.by_user_id(sender).send_mail.post(body)
        except (ODataError, httpx.TransportError) as err:
            raise graph_errors.to_application_error(err, call) from None
        except Exception as err:
            # Anything else could quote the message (and so a pass): keep only the type.
            raise ApplicationError(f"{call}: {type(err).__name__}", type="GraphError") from None

    @activity.defn(name=ActivityNames.GRAPH_FIND_MAILBOX)
    async def find_mailbox(self, input: EmployeeIdInput) -> Mailbox:
        """The account and mail address of a person by employeeId (retryable while not there)."""
        found = await self._manager(input.employee_id)
        return Mailbox(user_id=found.user_id, address=found.address)

    @activity.defn(name=ActivityNames.GRAPH_SEND_MAIL)
    async def send_mail(self, input: SendMailInput) -> None:
        if input.to_address:
            await self._send_mail(
                input.sender,
                input.to_address,
                input.subject,
                input.html_body,
                f"send mail to {input.to_user_id}",
            )
            return
        call = f"look up mail address of user {input.to_user_id}"
        config = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                select=["mail", "userPrincipalName"]
            )
        )
        with graph_call(call):
            user = await self._client.users.by_user_id(input.to_user_id).get(
                request_configuration=config
            )
        address = (user.mail or user.user_principal_name) if user else None
        if not address:
            raise ApplicationError(f"{call}: no address", type="GraphNotFound", non_retryable=True)
        await self._send_mail(
            input.sender,
            address,
            input.subject,
            input.html_body,
            f"send mail to {input.to_user_id}",
        )

    @activity.defn(name=ActivityNames.GRAPH_ISSUE_TAP_TO_MANAGER)
    async def issue_temporary_access_pass_to_manager(
        self, input: IssueTapToManagerInput
    ) -> TapIssued:
        manager = await self._manager(input.manager_employee_id)
        methods = self._client.users.by_user_id(input.user_id).authentication
        methods = methods.temporary_access_pass_methods
        # A pass's secret can never be read again, and Graph replaces a user's valid pass when a
        # new one is created: a retry simply issues a new pass, and the one mailed last works.
        request = TemporaryAccessPassAuthenticationMethod(
            start_date_time=input.start_at,
            lifetime_in_minutes=input.lifetime_minutes,
            is_usable_once=True,
        )
        with graph_call(f"create temporary access pass for user {input.user_id}"):
            created = await self._send_for_json(methods.to_post_request_information(request))
        method_id, secret = created.get("id"), created.pop("temporaryAccessPass", None)
        if not method_id or not secret:
            raise ApplicationError(
                f"create temporary access pass for user {input.user_id}: no pass returned",
                type="GraphBadResponse",
            )
        start = _parse_graph_time(created.get("startDateTime")) or input.start_at
        end = start + timedelta(minutes=input.lifetime_minutes)
        html = (
            f"<p>Hello {escape(manager.display_name)},</p>"
            f"<p>{escape(input.user_display_name)} joins your team. To sign in the first time, "
            f"they need this one-time Temporary Access Pass:</p>"
            f"<p style='font-size:1.4em'><b>{escape(secret)}</b></p>"
            f"<p>It is valid from {_graph_time(start)} until {_graph_time(end)} (UTC) and works "
            f"once. Please hand it over in person or by phone.</p>"
        )
        del secret, created  # drop the secret as soon as it is in the mail
        await self._send_mail(
            input.mail_sender,
            manager.address,
            f"Temporary Access Pass for {input.user_display_name}",
            html,
            f"mail temporary access pass of {input.user_id} to manager {manager.user_id}",
        )
        del html
        return TapIssued(
            tap_method_id=method_id,
            mailed_to_user_id=manager.user_id,
            start_at=start,
            lifetime_minutes=input.lifetime_minutes,
        )


def _parse_graph_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _sub_response_error(call: str, failed: list[dict[str, Any]]) -> ApplicationError:
    """One error for a $batch's failed sub-requests: retry after the longest Retry-After if any
    were throttled, otherwise fail on the first permanent error."""
    throttled = [a for a in failed if int(a.get("status", 0)) in (429, 503, 504)]
    if throttled:
        worst = max(throttled, key=lambda a: graph_errors.retry_after_seconds(a.get("headers")))
        failed = [worst]
    first = failed[0]
    error = (first.get("body") or {}).get("error") or {}
    where = f" (group {first['group']!r})" if "group" in first else ""
    return graph_errors.for_status(
        f"{call}{where}, {len(failed)} of the batch failed",
        int(first.get("status", 0)) or 500,
        error.get("code"),
        error.get("message"),
        first.get("headers"),
    )
