"""The SQLite storage of the local SCIM target: scim2-server's storage contract, and restarts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from scim2_models import ScimProvider, UniquenessException
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


# ---- the index of `eq` searches -------------------------------------------------------------------


def _user_storage(path: Path):
    from scim2_server.utils import load_default_provider

    provider = load_default_provider()
    user_type = next(rt for rt in provider.resource_types if rt.id == "User")
    group_type = next(rt for rt in provider.resource_types if rt.id == "Group")
    return SqliteStorage(path, provider), provider, user_type, group_type


def _request(provider: ScimProvider, resource_type, scim_filter: str, **params):
    from scim2_models import SearchRequest
    from scim2_server.utils import parametrize

    model = provider.model_for(resource_type)
    return parametrize(SearchRequest, model).model_validate({"filter": scim_filter, **params})


def _search_ids(storage: SqliteStorage, provider, resource_type, scim_filter: str, **params):
    """The ids an indexed search returns, checked against the scan answering the same question."""
    request = _request(provider, resource_type, scim_filter, **params)
    # `f and f` means `f`, but is no single comparison: the storage answers it by a full scan.
    scanned = _request(provider, resource_type, f"({scim_filter}) and ({scim_filter})", **params)
    assert storage._index.rows([resource_type], request.filter) is not None
    assert storage._index.rows([resource_type], scanned.filter) is None
    page = storage.search([resource_type], request)
    reference = storage.search([resource_type], scanned)
    assert page.total == reference.total
    assert [r.model_dump() for r in page.resources] == [r.model_dump() for r in reference.resources]
    return [r.id for r in page.resources]


def test_indexed_eq_searches_answer_as_the_scan(tmp_path: Path) -> None:
    storage, provider, user_type, group_type = _user_storage(tmp_path / "scim.db")
    user_model = provider.model_for(user_type)
    group_model = provider.model_for(group_type)
    try:
        ada = storage.create(
            user_type,
            user_model(user_name="Ada@Example.com", external_id="E1", display_name="Ada L"),
        )
        bob = storage.create(user_type, user_model(user_name="bob@example.com", external_id="e1"))
        storage.create(user_type, user_model(user_name="carol@example.com"))
        admins = storage.create(group_type, group_model(display_name="CRM-Admins"))

        def users(scim_filter: str, **params) -> list[str]:
            return _search_ids(storage, provider, user_type, scim_filter, **params)

        # userName is caseExact=false: any case finds it.
        assert users('userName eq "ada@example.com"') == [ada.id]
        assert users('USERNAME eq "ADA@EXAMPLE.COM"') == [ada.id]
        assert users('userName eq "nobody@example.com"') == []
        # externalId is caseExact=true (RFC 7643, and scim2-models): case is significant.
        assert users('externalId eq "E1"') == [ada.id]
        assert users('externalId eq "e1"') == [bob.id]
        assert users('externalId eq "E2"') == []
        # displayName is caseExact=false, on Users as on Groups.
        assert users('displayName eq "ada l"') == [ada.id]
        groups = _search_ids(storage, provider, group_type, 'displayName eq "crm-admins"')
        assert groups == [admins.id]
        assert _search_ids(storage, provider, group_type, 'displayName eq "crm"') == []
        # id is caseExact=true.
        assert users(f'id eq "{bob.id}"') == [bob.id]
        assert users(f'id eq "{bob.id.upper()}"') == []
        assert users(f'id eq "{admins.id}"') == []  # a Group's id is not a User's
        # Paging still applies to the indexed candidates, and totalResults counts them all.
        assert users('userName eq "bob@example.com"', startIndex=2, count=5) == []
        assert users('userName eq "bob@example.com"', startIndex=1, count=0) == []
        assert users('userName eq "bob@example.com"', startIndex=1, count=1) == [bob.id]

        # The found resources are copies: changing one changes nothing stored.
        request = _request(provider, user_type, 'externalId eq "E1"')
        found = storage.search([user_type], request).resources[0]
        found.user_name = "changed@example.com"
        assert storage.search([user_type], request).resources[0].user_name == "Ada@Example.com"

        # Other filters, and searches over several types, still scan.
        for scim_filter in ('userName ne "x"', 'userName sw "ada"', "externalId pr"):
            assert (
                storage._index.rows([user_type], _request(provider, user_type, scim_filter).filter)
                is None
            )
    finally:
        storage.close()


def test_an_existing_file_without_the_index_is_backfilled_on_open(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "scim.db"
    storage, provider, user_type, _ = _user_storage(db)
    model = provider.model_for(user_type)
    created = [
        storage.create(user_type, model(user_name=f"u{i}@example.com", external_id=f"E{i}"))
        for i in range(3)
    ]
    storage.close()
    # What a file written before the index existed holds: no index tables at all.
    with sqlite3.connect(db) as raw:
        raw.executescript("DROP TABLE search_keys; DROP TABLE search_key_sets;")
    raw.close()

    reopened = SqliteStorage(db, provider)
    try:
        (rows,) = reopened._db.execute("SELECT count(*) FROM search_keys").fetchone()
        assert rows == 3 * 3  # id, externalId and userName of each user (no displayName)
        assert _search_ids(reopened, provider, user_type, 'externalId eq "E1"') == [created[1].id]
        assert _search_ids(reopened, provider, user_type, 'userName eq "U2@EXAMPLE.COM"') == [
            created[2].id
        ]
    finally:
        reopened.close()


def test_the_index_follows_replace_and_delete(tmp_path: Path) -> None:
    storage, provider, user_type, _ = _user_storage(tmp_path / "scim.db")
    model = provider.model_for(user_type)
    try:
        user = storage.create(user_type, model(user_name="ada@example.com", external_id="E1"))
        user.user_name = "lovelace@example.com"
        user.external_id = None
        storage.update(user_type, user)
        assert _search_ids(storage, provider, user_type, 'userName eq "ada@example.com"') == []
        assert _search_ids(storage, provider, user_type, 'userName eq "Lovelace@example.com"') == [
            user.id
        ]
        assert _search_ids(storage, provider, user_type, 'externalId eq "E1"') == []

        # A refused write (a duplicate userName) leaves the index as it was.
        other = storage.create(user_type, model(user_name="bob@example.com", external_id="E2"))
        other.user_name = "LOVELACE@example.com"
        with pytest.raises(UniquenessException):
            storage.update(user_type, other)
        assert _search_ids(storage, provider, user_type, 'userName eq "bob@example.com"') == [
            other.id
        ]

        storage.delete(user_type, user.id)
        assert _search_ids(storage, provider, user_type, 'userName eq "lovelace@example.com"') == []
        assert _search_ids(storage, provider, user_type, f'id eq "{user.id}"') == []
        (rows,) = storage._db.execute(
            "SELECT count(*) FROM search_keys WHERE id = ?", (user.id,)
        ).fetchone()
        assert rows == 0
    finally:
        storage.close()


async def test_a_patch_moves_the_indexed_values(tmp_path: Path) -> None:
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com",
        "externalId": "E1",
    }
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "externalId", "value": "E2"},
            {"op": "replace", "path": "userName", "value": "lovelace@example.com"},
        ],
    }
    async with running_scim_server(tmp_path / "scim.db") as (base_url, token):
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as http:
            created = (await http.post("/Users", json=user)).raise_for_status().json()
            (await http.patch(f"/Users/{created['id']}", json=patch)).raise_for_status()

            async def found(scim_filter: str) -> list[str]:
                response = await http.get("/Users", params={"filter": scim_filter})
                body = response.raise_for_status().json()
                return [u["id"] for u in body.get("Resources", [])]

            assert await found('externalId eq "E1"') == []
            assert await found('externalId eq "E2"') == [created["id"]]
            assert await found('userName eq "ada@example.com"') == []
            assert await found('userName eq "LOVELACE@example.com"') == [created["id"]]
