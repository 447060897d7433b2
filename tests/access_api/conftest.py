"""One Temporal dev server, stand-in request workflow worker, record store, token issuer and API for
the access API tests (shared by the package: each start costs seconds)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.settings import ApiSettings
from audit.store import AccessRecordStore
from tests.support.access_api import (
    PEOPLE,
    ROLES,
    asgi_client,
)
from tests.support.fake_access_request import FakeAccessRequestWorkflow
from tests.support.temporal_dev import temporal_dev_server
from tests.support.token_issuer import Issuer, token_issuer


@pytest.fixture(scope="package")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    async with temporal_dev_server() as env:
        yield env


@pytest.fixture(scope="package")
def task_queue() -> str:
    return f"access-api-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="package")
async def worker(temporal: WorkflowEnvironment, task_queue: str) -> AsyncIterator[None]:
    async with Worker(
        temporal.client, task_queue=task_queue, workflows=[FakeAccessRequestWorkflow]
    ):
        yield


@pytest.fixture(scope="package")
def store(tmp_path_factory: pytest.TempPathFactory) -> AccessRecordStore:
    return AccessRecordStore(tmp_path_factory.mktemp("record") / "access-record.db")


@pytest.fixture(scope="package")
async def issuer() -> AsyncIterator[Issuer]:
    async with token_issuer(PEOPLE, ROLES) as tokens:
        yield tokens


@pytest.fixture(scope="package")
async def api(
    temporal: WorkflowEnvironment,
    worker: None,
    task_queue: str,
    store: AccessRecordStore,
    issuer: Issuer,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(
        intake_token="intake",
        task_queue=task_queue,
        access_record_db=store.path,
        tokens=issuer.settings,
    )
    async with asgi_client(create_app(settings, client=temporal.client)) as http:
        yield http
