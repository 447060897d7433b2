"""`tenure temporal setup --cloud` against a fake Cloud Operations API (no network).

The fake keeps one namespace the way the Cloud API does: GetNamespace answers its spec and resource
version; UpdateNamespace replaces the whole spec if the resource version still matches, and answers
an asynchronous operation that the setup must follow to its end. Unverified against a real account.
"""

from __future__ import annotations

import pytest
from temporalio.api.cloud.cloudservice.v1 import (
    GetAsyncOperationRequest,
    GetAsyncOperationResponse,
    GetNamespaceRequest,
    GetNamespaceResponse,
    UpdateNamespaceRequest,
    UpdateNamespaceResponse,
)
from temporalio.api.cloud.namespace.v1 import Namespace, NamespaceSpec
from temporalio.api.cloud.operation.v1 import AsyncOperation
from temporalio.service import RPCError, RPCStatusCode

from cli import temporal_cmd
from cli.main import main
from connection.cloud_search_attributes import CloudSettings, ensure_cloud_search_attributes
from connection.search_attributes_setup import (
    Outcome,
    SearchAttributeSetupError,
    SearchAttributeTypeClashError,
)
from domain import search_attributes

NAMESPACE_ID = "tenure-prod.a1b2c"
KEYWORD = NamespaceSpec.SEARCH_ATTRIBUTE_TYPE_KEYWORD
TEXT = NamespaceSpec.SEARCH_ATTRIBUTE_TYPE_TEXT
TENURE_NAMES = [key.name for key in search_attributes.ALL]


class FakeCloudService:
    def __init__(self, attributes: dict[str, int], operation_ends: int) -> None:
        spec = NamespaceSpec(name="tenure-prod", retention_days=30)
        spec.regions.append("aws-eu-west-1")
        for name, kind in attributes.items():
            spec.search_attributes[name] = kind
        self.namespace = Namespace(namespace=NAMESPACE_ID, resource_version="rv-1", spec=spec)
        self.updates: list[UpdateNamespaceRequest] = []
        self.polled: list[str] = []
        self.operation_ends = operation_ends

    async def get_namespace(self, req: GetNamespaceRequest, **_: object) -> GetNamespaceResponse:
        if req.namespace != NAMESPACE_ID:
            raise RPCError("namespace not found", RPCStatusCode.NOT_FOUND, b"")
        return GetNamespaceResponse(namespace=self.namespace)

    async def update_namespace(
        self, req: UpdateNamespaceRequest, **_: object
    ) -> UpdateNamespaceResponse:
        self.updates.append(req)
        if req.resource_version != self.namespace.resource_version:
            raise RPCError("resource version mismatch", RPCStatusCode.FAILED_PRECONDITION, b"")
        self.namespace.spec.CopyFrom(req.spec)
        self.namespace.resource_version = f"rv-{len(self.updates) + 1}"
        running = AsyncOperation(id=req.async_operation_id, state=AsyncOperation.STATE_IN_PROGRESS)
        running.check_duration.FromMilliseconds(200)  # when to look again
        return UpdateNamespaceResponse(async_operation=running)

    async def get_async_operation(
        self, req: GetAsyncOperationRequest, **_: object
    ) -> GetAsyncOperationResponse:
        self.polled.append(req.async_operation_id)
        ended = AsyncOperation(id=req.async_operation_id, state=self.operation_ends)
        if self.operation_ends == AsyncOperation.STATE_FAILED:
            ended.failure_reason = "search attribute limit reached"
        return GetAsyncOperationResponse(async_operation=ended)


class FakeCloudClient:
    def __init__(self, service: FakeCloudService) -> None:
        self.cloud_service = service


def fake_cloud(
    attributes: dict[str, int] | None = None, operation_ends: int = AsyncOperation.STATE_FULFILLED
) -> FakeCloudClient:
    return FakeCloudClient(FakeCloudService(attributes or {}, operation_ends))


async def test_registers_the_missing_attributes_keeping_the_rest_of_the_spec() -> None:
    cloud = fake_cloud({"Team": TEXT, "EmployeeId": KEYWORD})
    found = await ensure_cloud_search_attributes(cloud, NAMESPACE_ID)

    assert [(s.name, s.type_name, s.outcome) for s in found] == [
        ("EmployeeId", "Keyword", Outcome.ALREADY_REGISTERED),
        *[(name, "Keyword", Outcome.REGISTERED) for name in TENURE_NAMES[1:]],
    ]
    [update] = cloud.cloud_service.updates
    assert update.namespace == NAMESPACE_ID
    assert update.resource_version == "rv-1"  # the version the spec was read at
    # The whole spec goes back: what the namespace had, plus Tenure's attributes as Keyword.
    assert update.spec.retention_days == 30 and list(update.spec.regions) == ["aws-eu-west-1"]
    assert dict(update.spec.search_attributes) == {"Team": TEXT} | dict.fromkeys(
        TENURE_NAMES, KEYWORD
    )
    assert cloud.cloud_service.polled == [update.async_operation_id]  # followed until fulfilled

    again = await ensure_cloud_search_attributes(cloud, NAMESPACE_ID)
    assert {s.outcome for s in again} == {Outcome.ALREADY_REGISTERED}
    assert len(cloud.cloud_service.updates) == 1  # the second run changes nothing


async def test_check_only_reports_and_sends_no_update() -> None:
    cloud = fake_cloud({"LifecycleStage": KEYWORD})
    found = await ensure_cloud_search_attributes(cloud, NAMESPACE_ID, check_only=True)
    assert [s.name for s in found if s.outcome is Outcome.MISSING] == [
        name for name in TENURE_NAMES if name != "LifecycleStage"
    ]
    assert cloud.cloud_service.updates == []


async def test_a_type_clash_changes_nothing_and_names_both_types() -> None:
    cloud = fake_cloud({"AccessPackage": TEXT})
    with pytest.raises(SearchAttributeTypeClashError) as clash:
        await ensure_cloud_search_attributes(cloud, NAMESPACE_ID)
    assert clash.value.clashes == [("AccessPackage", "Keyword", "Text")]
    assert "AccessPackage is registered as Text, Tenure writes it as Keyword" in str(clash.value)
    assert cloud.cloud_service.updates == []


async def test_a_failed_operation_is_an_error_with_its_reason() -> None:
    cloud = fake_cloud(operation_ends=AsyncOperation.STATE_FAILED)
    with pytest.raises(SearchAttributeSetupError, match="ended failed: search attribute limit"):
        await ensure_cloud_search_attributes(cloud, NAMESPACE_ID)


async def test_an_unknown_namespace_says_what_the_id_should_be() -> None:
    with pytest.raises(SearchAttributeSetupError, match=r"NOT_FOUND.*<name>\.<account id>"):
        await ensure_cloud_search_attributes(fake_cloud(), "other.a1b2c")


def test_cli_cloud_runs_through_the_cloud_api(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = fake_cloud()
    seen: list[CloudSettings] = []

    async def connect(settings: CloudSettings) -> FakeCloudClient:
        seen.append(settings)
        return cloud

    monkeypatch.setattr(temporal_cmd, "connect_cloud", connect)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", NAMESPACE_ID)
    monkeypatch.setenv("TEMPORAL_CLOUD_API_KEY", "key-1")

    assert main(["temporal", "setup", "--cloud", "--check"]) == 1
    assert f"{len(search_attributes.ALL)} missing" in capsys.readouterr().err
    assert main(["temporal", "setup", "--cloud"]) == 0
    out = capsys.readouterr().out
    assert f"Temporal Cloud namespace {NAMESPACE_ID}" in out
    assert reported(out) == dict.fromkeys(TENURE_NAMES, ("Keyword", "registered"))
    assert main(["temporal", "setup", "--cloud"]) == 0
    again = reported(capsys.readouterr().out)
    assert again == dict.fromkeys(TENURE_NAMES, ("Keyword", "already registered"))
    assert len(cloud.cloud_service.updates) == 1
    assert {(s.namespace_id, s.api_key) for s in seen} == {(NAMESPACE_ID, "key-1")}


def reported(out: str) -> dict[str, tuple[str, str]]:
    """The command's lines `  <name>  <type>  <outcome>`, by name."""
    lines = (line.split(maxsplit=2) for line in out.splitlines() if line.startswith("  "))
    return {name: (kind, outcome) for name, kind, outcome in lines}


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"TEMPORAL_NAMESPACE": "default", "TEMPORAL_API_KEY": "k"}, "'default': expected"),
        ({"TEMPORAL_NAMESPACE": NAMESPACE_ID}, "needs an API key"),
    ],
)
def test_cli_cloud_refuses_settings_it_cannot_use(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    complaint: str,
) -> None:
    for name in ("TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_CLOUD_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    async def no_network(settings: CloudSettings) -> None:
        raise AssertionError("settings were refused: nothing should connect")

    monkeypatch.setattr(temporal_cmd, "connect_cloud", no_network)
    assert main(["temporal", "setup", "--cloud"]) == 2
    assert complaint in capsys.readouterr().err
