"""The SQLite storage of the local SCIM target: scim2-server's storage contract, and restarts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from scim2_models import ScimProvider
from scim2_server.testing import ScimStorageContract

from emulators.scim.storage import SqliteStorage
from tests.support.scim_server import running_scim_server


class TestSqliteStorageContract(ScimStorageContract):
    """Every rule scim2-server's own storages follow, run against our SQLite storage."""

    @pytest.fixture
    def storage(self, provider: ScimProvider, tmp_path: Path):
        storage = SqliteStorage(tmp_path / "scim.db", provider)
        yield storage
        storage.close()


def test_storage_reopens_with_its_resources(tmp_path: Path) -> None:
    from scim2_server.utils import load_default_provider

    provider = load_default_provider()
    user_type = next(rt for rt in provider.resource_types if rt.id == "User")
    model = provider.model_for(user_type)
    first = SqliteStorage(tmp_path / "scim.db", provider)
    created = first.create(user_type, model(user_name="bjensen"))
    first.close()

    second = SqliteStorage(tmp_path / "scim.db", provider)
    try:
        again = second.get(user_type, created.id)
        assert again.user_name == "bjensen"
        assert again.meta.version == created.meta.version
        # The version counter survives too: the next write gets a version never seen before.
        updated = second.update(user_type, again)
        assert updated.meta.version != created.meta.version
    finally:
        second.close()


async def test_a_restarted_server_serves_the_same_users_and_groups(tmp_path: Path) -> None:
    db = tmp_path / "crm.db"
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com",
        "externalId": "E1001",
    }
    async with running_scim_server(db) as (base_url, token):
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
            created = (await http.post("/Users", json=user)).raise_for_status().json()
            group = {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "crm-admins",
                "members": [{"value": created["id"]}],
            }
            made_group = (await http.post("/Groups", json=group)).raise_for_status().json()

    async with running_scim_server(db) as (base_url, token):
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
            found = (await http.get("/Users", params={"filter": 'externalId eq "E1001"'})).json()
            assert [u["id"] for u in found["Resources"]] == [created["id"]]
            assert found["Resources"][0]["userName"] == "ada@example.com"
            again = (await http.get(f"/Groups/{made_group['id']}")).json()
            assert [m["value"] for m in again["members"]] == [created["id"]]
            # Uniqueness is still enforced after the restart.
            assert (await http.post("/Users", json=user)).status_code == 409


async def test_requests_without_the_token_are_refused() -> None:
    async with running_scim_server() as (base_url, token):
        async with httpx.AsyncClient(base_url=base_url) as http:
            assert (await http.get("/Users")).status_code == 401
            wrong = {"Authorization": "Bearer not-the-token"}
            assert (await http.get("/Users", headers=wrong)).status_code == 401
            right = {"Authorization": f"Bearer {token}"}
            assert (await http.get("/Users", headers=right)).status_code == 200
