"""Graph group activities: memberships by $batch, and a group's enabled members (approvers)."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.graph.directory import GraphDirectory
from activities.graph.odata import BATCH_LIMIT, chunks, segment, sub_response_error
from domain.provisioning import ActivityNames, GroupMembershipInput, GroupMembershipResult

_ALREADY_MEMBER = "added object references already exist"


class GraphGroups(GraphDirectory):
    """Group memberships and group members; group names resolve through the shared cache."""

    async def group_member_employee_ids(self, name: str) -> list[str]:
        """Employee ids of a group's enabled members (approvers named by group), every page."""
        group_id = (await self._resolve_groups([name]))[name]
        members = await self._all_pages(
            f"{self._root}/groups/{segment(group_id)}/members"
            "?$select=id,employeeId,accountEnabled&$top=100",
            f"list members of group {name!r}",
        )
        return [
            m["employeeId"]
            for m in members
            if m.get("employeeId") and m.get("accountEnabled", True)
        ]

    @activity.defn(name=ActivityNames.GRAPH_ENSURE_GROUP_MEMBERSHIPS)
    async def ensure_group_memberships(self, input: GroupMembershipInput) -> GroupMembershipResult:
        group_ids = await self._resolve_groups(input.groups)
        result = GroupMembershipResult(group_ids=group_ids)
        member_ref = {"@odata.id": f"{self._root}/directoryObjects/{segment(input.user_id)}"}
        verb = "add" if input.present else "remove"
        call = f"{verb} user {input.user_id} group memberships"
        names = list(group_ids)
        failed: list[dict[str, Any]] = []
        for chunk in chunks(names, BATCH_LIMIT):
            requests = []
            for i, name in enumerate(chunk):
                gid = group_ids[name]
                if input.present:
                    requests.append(
                        {
                            "id": str(i),
                            "method": "POST",
                            "url": f"/groups/{segment(gid)}/members/$ref",
                            "headers": {"Content-Type": "application/json"},
                            "body": member_ref,
                        }
                    )
                else:
                    url = f"/groups/{segment(gid)}/members/{segment(input.user_id)}/$ref"
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
            raise sub_response_error(call, failed)
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
