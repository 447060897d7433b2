"""A world for review-campaign workflow tests: the Graph emulator, a record on SQLite, a worker
running the review workflows with the real review activities, and a log of the mails they send.

The time-skipping test server serves no visibility queries, so who Tenure manages (identity
stages, package grants) comes from `StagesPopulation`, set by the test; the visibility reader
itself runs in the end-to-end tests on a dev server.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.graph.client import GraphSettings, build_graph_client
from activities.reviews.activities import ReviewActivities
from activities.reviews.inventory import ReviewGraph
from activities.reviews.population import GrantedRequest
from activities.scim.activities import ScimActivities
from audit.store import AccessRecordStore
from domain.access.request import NotifyInput, NotifyResult
from domain.policy.model import Policy
from domain.reviews.campaign import (
    BulkAnswer,
    BulkDecision,
    CampaignInput,
    CampaignProgress,
    ReviewContract,
    batch_workflow_id,
    campaign_id,
)
from domain.reviews.definition import ReviewDefinition
from tests.support.graph_emulator import EmulatorControl, running_graph_emulator
from workers import registry

DOMAIN = "example.com"


@dataclass
class Mail:
    at: datetime  # workflow time the mail's activity was scheduled (skipped time in tests)
    to: str
    subject: str


class RecordingNotifier:
    """Keeps every mail the review activities send, with when (in workflow time) it was sent."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def notify(self, input: NotifyInput) -> NotifyResult:
        at = activity.info().current_attempt_scheduled_time
        for to in input.to_employee_ids:
            self.mails.append(Mail(at=at, to=to, subject=input.subject))
        return NotifyResult(sent_to=list(input.to_employee_ids))

    def to(self, employee_id: str, containing: str = "") -> list[Mail]:
        return [m for m in self.mails if m.to == employee_id and containing in m.subject]


@dataclass
class StagesPopulation:
    stages: dict[str, str] = field(default_factory=dict)
    granted: list[GrantedRequest] = field(default_factory=list)

    async def identity_stages(self) -> dict[str, str]:
        return dict(self.stages)

    async def granted_requests(self, packages: list[str]) -> list[GrantedRequest]:
        return [g for g in self.granted if g.package_id in packages]


@dataclass
class ReviewWorld:
    env: WorkflowEnvironment
    queue: str
    store: AccessRecordStore
    graph: httpx.AsyncClient  # Graph v1.0, with the emulator's token
    control: EmulatorControl
    mails: RecordingNotifier
    population: StagesPopulation
    ids: dict[str, str] = field(default_factory=dict)  # UPN local part or group name -> object id

    async def user(self, name: str, employee_id: str | None = None, **props: Any) -> str:
        body = {"userPrincipalName": f"{name}@{DOMAIN}", **props}
        if employee_id is not None:
            body["employeeId"] = employee_id
        seeded = await self.control.seed(users=[body])
        self.ids[name] = seeded["users"][f"{name}@{DOMAIN}"]
        return self.ids[name]

    async def group(self, name: str, members: list[str], owners: list[str] = ()) -> str:  # type: ignore[assignment]
        seeded = await self.control.seed(groups=[{"displayName": name}])
        gid = self.ids[name] = seeded["groups"][name]
        for relation, people in (("members", members), ("owners", owners)):
            for person in people:
                ref = {"@odata.id": f"{self.graph.base_url}/directoryObjects/{self.ids[person]}"}
                (
                    await self.graph.post(f"/groups/{gid}/{relation}/$ref", json=ref)
                ).raise_for_status()
        return gid

    async def signed_in(self, name: str, at: datetime | None) -> None:
        body = {"lastSignInDateTime": at.isoformat().replace("+00:00", "Z") if at else None}
        await self.control._call("PUT", f"/sign-in/{self.ids[name]}", json=body)

    async def start(
        self,
        review_id: str,
        definition: ReviewDefinition,
        batch_size: int = 1000,
        workflow_id: str | None = None,
    ) -> WorkflowHandle[Any, CampaignProgress]:
        now = await self.env.get_current_time()
        return await self.env.client.start_workflow(
            ReviewContract.CAMPAIGN_WORKFLOW,
            CampaignInput(
                review_id=review_id,
                definition=definition,
                batch_size=batch_size,
                record_search_attributes=False,
            ),
            id=workflow_id or f"{campaign_id(review_id, now)}-{uuid.uuid4().hex[:6]}",
            task_queue=self.queue,
            result_type=CampaignProgress,
        )

    async def decide(
        self, campaign: WorkflowHandle, stage: int, batch: int, **fields: Any
    ) -> BulkAnswer:
        handle = self.env.client.get_workflow_handle(batch_workflow_id(campaign.id, stage, batch))
        return await handle.execute_update(
            ReviewContract.DECIDE, BulkDecision.model_validate(fields), result_type=BulkAnswer
        )

    async def progress(self, campaign: WorkflowHandle) -> CampaignProgress:
        return await campaign.query(ReviewContract.PROGRESS, result_type=CampaignProgress)


@asynccontextmanager
async def review_world(
    env: WorkflowEnvironment, tmp_path: Path, policy: Policy
) -> AsyncIterator[ReviewWorld]:
    queue = f"reviews-{uuid.uuid4()}"
    store = AccessRecordStore(tmp_path / "record.db")
    async with (
        running_graph_emulator() as emulator,
        httpx.AsyncClient(
            base_url=emulator.base_url,
            headers={"Authorization": f"Bearer {emulator.token}"},
        ) as graph_http,
    ):
        control = EmulatorControl(emulator)
        mails = RecordingNotifier()
        population = StagesPopulation()
        client = build_graph_client(GraphSettings(base_url=emulator.base_url, token=emulator.token))
        reviews = ReviewActivities(
            store,
            policy,
            ReviewGraph(client),
            {},
            ScimActivities({}),
            env.client,
            mails,
            population,
        )
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=registry.REVIEW_WORKFLOWS,
            activities=registry.activities(reviews, complete=False),
        ):
            yield ReviewWorld(env, queue, store, graph_http, control, mails, population)
        await control.aclose()
    store.close()
