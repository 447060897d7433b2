"""Who Tenure manages, as a review needs to know it: each identity's lifecycle stage, and the
package grants in force. Read from Temporal's visibility (search attributes), page by page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from temporalio.client import Client

from domain.access.request import AccessRequestContract, RequestStatus
from domain.lifecycle.identity import IdentityContract
from domain.search_attributes import ACCESS_PACKAGE, EMPLOYEE_ID, LIFECYCLE_STAGE, REQUEST_STATUS

# Running runs only: a continued-as-new identity leaves closed runs behind with stale stages.
IDENTITIES = f"WorkflowType = '{IdentityContract.WORKFLOW}' AND ExecutionStatus = 'Running'"


@dataclass(frozen=True)
class GrantedRequest:
    request_id: str
    package_id: str
    employee_id: str


class Population(Protocol):
    async def identity_stages(self) -> dict[str, str]:
        """Employee id -> lifecycle stage of every identity Tenure runs."""
        ...

    async def granted_requests(self, packages: list[str]) -> list[GrantedRequest]:
        """Requests of these packages whose access is held now."""
        ...


class TemporalPopulation:
    def __init__(self, client: Client) -> None:
        self._client = client

    async def identity_stages(self) -> dict[str, str]:
        stages: dict[str, str] = {}
        async for execution in self._client.list_workflows(IDENTITIES):
            attrs = execution.typed_search_attributes
            employee = attrs.get(EMPLOYEE_ID)
            if employee:
                stages[employee] = attrs.get(LIFECYCLE_STAGE) or ""
        return stages

    async def granted_requests(self, packages: list[str]) -> list[GrantedRequest]:
        if not packages:
            return []
        quoted = ", ".join("'" + p.replace("'", "") + "'" for p in packages)
        query = (
            f"WorkflowType = '{AccessRequestContract.WORKFLOW}' AND ExecutionStatus = 'Running' "
            f"AND {ACCESS_PACKAGE.name} IN ({quoted}) "
            f"AND {REQUEST_STATUS.name} = '{RequestStatus.GRANTED.value}'"
        )
        found = []
        async for execution in self._client.list_workflows(query):
            attrs = execution.typed_search_attributes
            found.append(
                GrantedRequest(
                    request_id=execution.id,
                    package_id=attrs.get(ACCESS_PACKAGE) or "",
                    employee_id=attrs.get(EMPLOYEE_ID) or "",
                )
            )
        return found
