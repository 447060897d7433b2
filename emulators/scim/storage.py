"""SQLite storage for scim2-server: a local SCIM target keeps its Users and Groups across restarts.

scim2-server does all of SCIM (routing, validation, PATCH, filters, ETags); this module only stores
the resources it hands over. Each resource is kept as its JSON under its resource type and id, and
its server-unique values (such as `userName`) in a second table whose primary key makes SQLite
itself refuse a duplicate. Every write is its own transaction, committed before the call returns,
so an accepted request is on disk before its response is sent.

The same file holds the index of `eq` searches (`filter_index.SearchKeyIndex`), written in the same
transactions as the resources it indexes.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path as FilePath
from typing import Any, cast

from scim2_models import (
    AttributeBinding,
    Meta,
    NotFoundException,
    Path,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    ScimProvider,
    SearchRequest,
    Uniqueness,
    UniquenessException,
)
from scim2_server.storage import AsyncScimStorage, ScimStorage, SearchPage
from scim2_server.utils import parametrize

from emulators.scim import filter_index

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    resource_type TEXT NOT NULL,
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (resource_type, id)
);
CREATE TABLE IF NOT EXISTS unique_values (
    urn TEXT NOT NULL,
    value TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (urn, value)
);
CREATE INDEX IF NOT EXISTS unique_values_owner ON unique_values (resource_type, id);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class SqliteStorage(ScimStorage):
    """A `ScimStorage` on one SQLite file (WAL, synchronous=NORMAL).

    `provider` tells which model each resource type reads back into (extensions included), since the
    file holds JSON only. A lock serializes the connection, so a threaded server can share it.
    Searches load the candidate resources and let scim2-models evaluate the filter and the sort, so
    every filter the server accepts is answered exactly as the in-memory storage would. A filter
    that is a single `eq` on an indexed attribute narrows the candidates to the rows its
    `SearchKeyIndex` names; anything else reads every resource of the searched types.
    """

    def __init__(self, path: str | FilePath, provider: ScimProvider) -> None:
        self.provider = provider
        self._lock = threading.RLock()
        # isolation_level=None: we open and commit transactions ourselves, one per write.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._db.executescript(filter_index.SCHEMA)
        self._index = filter_index.SearchKeyIndex(self._db, provider, self._load)
        with self._lock:
            for resource_type in provider.resource_types:
                self._index.open(resource_type, self._transaction)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- ScimStorage -----------------------------------------------------------------------------

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        # The whole resource is always returned; the server applies the response parameters itself.
        with self._lock:
            return self._load(resource_type, self._row(resource_type, resource_id)[1])

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        types = {rt.name: rt for rt in resource_types}
        with self._lock:
            rows = self._index.rows(resource_types, search_request.filter)
            if rows is None:
                rows = self._db.execute(
                    f"SELECT resource_type, body FROM resources WHERE resource_type IN "
                    f"({','.join('?' * len(types))}) ORDER BY rowid",
                    list(types),
                ).fetchall()
        resources = [self._load(types[name], body) for name, body in rows]
        scim_filter = self._bound_filter(search_request.filter, resources)
        found = [r for r in resources if scim_filter is None or scim_filter.match(r)]
        found = search_request.sort(found)
        start = search_request.start_index_0 or 0
        stop = None if search_request.count is None else start + search_request.count
        return SearchPage(total=len(found), resources=found[start:stop])

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        resource = resource.model_copy(deep=True)
        with self._lock, self._transaction():
            now = _utcnow()
            resource.id = uuid.uuid4().hex
            resource.meta = Meta(
                resource_type=resource_type.name,
                created=now,
                last_modified=now,
                version=self._next_version(),
            )
            self._db.execute(
                "INSERT INTO resources (resource_type, id, version, body) VALUES (?, ?, ?, ?)",
                (resource_type.name, resource.id, resource.meta.version, _dump(resource)),
            )
            self._index_unique_values(resource_type, resource)
            self._index.index(resource_type.name, resource)
        return resource

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        resource_id = cast(str, resource.id)
        with self._lock, self._transaction():
            version, body = self._row(resource_type, resource_id)
            _check_version(version, expected_version)
            stored = self._load(resource_type, body)
            # A fresh model from a dump: the caller's object is never shared with what we keep.
            updated = type(resource).model_validate(resource.model_dump())
            assert stored.meta is not None
            updated.meta = stored.meta.model_copy(
                update={
                    "location": None,
                    "last_modified": _utcnow(),
                    "version": self._next_version(),
                }
            )
            self._db.execute(
                "UPDATE resources SET version = ?, body = ? WHERE resource_type = ? AND id = ?",
                (updated.meta.version, _dump(updated), resource_type.name, resource_id),
            )
            self._forget_unique_values(resource_type, resource_id)
            self._index_unique_values(resource_type, updated)
            self._index.forget(resource_type.name, resource_id)
            self._index.index(resource_type.name, updated)
        return updated

    def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        with self._lock, self._transaction():
            version, _ = self._row(resource_type, resource_id)
            _check_version(version, expected_version)
            self._db.execute(
                "DELETE FROM resources WHERE resource_type = ? AND id = ?",
                (resource_type.name, resource_id),
            )
            self._forget_unique_values(resource_type, resource_id)
            self._index.forget(resource_type.name, resource_id)

    # ---- internals -------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes the write lock at once; a refused write rolls back, leaving nothing.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _row(self, resource_type: ResourceType, resource_id: str | None) -> tuple[str, str]:
        row = self._db.execute(
            "SELECT version, body FROM resources WHERE resource_type = ? AND id = ?",
            (resource_type.name, resource_id),
        ).fetchone()
        if row is None:
            raise NotFoundException(detail=f"{resource_type.name} {resource_id!r} not found")
        return row

    def _load(self, resource_type: ResourceType, body: str) -> Resource[Any]:
        model = self.provider.model_for(resource_type)
        if model is None:
            raise NotFoundException(detail=f"unknown resource type {resource_type.name!r}")
        return cast(Resource[Any], model.model_validate(json.loads(body)))

    def _next_version(self) -> str:
        # A persistent counter: versions stay distinct across restarts, even within one microsecond.
        (value,) = self._db.execute(
            "INSERT INTO counters (name, value) VALUES ('version', 1) "
            "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"
        ).fetchone()
        return f'W/"{value}"'

    def _bound_filter(
        self, scim_filter: ScimFilter[Any] | None, resources: list[Resource[Any]]
    ) -> ScimFilter[Any] | None:
        # A search at the root carries an unbound filter: bind it to the models actually found.
        if scim_filter is None or scim_filter.models or not resources:
            return scim_filter
        models = tuple(dict.fromkeys(type(r) for r in resources))
        union = models[0] if len(models) == 1 else _union(models)
        return parametrize(ScimFilter, union)(str(scim_filter))

    def _index_unique_values(self, resource_type: ResourceType, resource: Resource[Any]) -> None:
        try:
            self._db.executemany(
                "INSERT INTO unique_values (urn, value, resource_type, id) VALUES (?, ?, ?, ?)",
                [
                    (urn, value, resource_type.name, resource.id)
                    for urn, value in _unique_values(resource).items()
                ],
            )
        except sqlite3.IntegrityError:
            raise UniquenessException() from None

    def _forget_unique_values(self, resource_type: ResourceType, resource_id: str) -> None:
        self._db.execute(
            "DELETE FROM unique_values WHERE resource_type = ? AND id = ?",
            (resource_type.name, resource_id),
        )


class AsyncSqliteStorage(AsyncScimStorage):
    """The `AsyncScimStorage` the ASGI application needs, over a `SqliteStorage`.

    Calls run on the event loop without awaiting anything (a local SQLite write takes well under a
    millisecond). That is deliberate: the server's read-modify-write of a PATCH then cannot
    interleave with another request, exactly as with scim2-server's own AsyncInMemoryStorage.
    """

    def __init__(self, storage: SqliteStorage) -> None:
        self.storage = storage

    async def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        return self.storage.get(resource_type, resource_id)

    async def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        return self.storage.search(resource_types, search_request, position=position)

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        return self.storage.create(resource_type, resource)

    async def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        return self.storage.update(resource_type, resource, expected_version=expected_version)

    async def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        self.storage.delete(resource_type, resource_id, expected_version=expected_version)


def _dump(resource: Resource[Any]) -> str:
    return json.dumps(resource.model_dump(), separators=(",", ":"))


def _union(models: tuple[type, ...]) -> Any:
    from typing import Union

    return Union[models]  # noqa: UP007 (a Union built at runtime)


def _check_version(version: str, expected_version: str | None) -> None:
    if expected_version is not None and version != expected_version:
        raise PreconditionFailedException


def _unique_values(resource: Resource[Any]) -> dict[str, str]:
    """The values of the attributes declared unique (`server` or `global`), in comparable form.

    Values are keyed by the attribute's URN, which names its schema, so two resources clash only on
    the same attribute of the same schema. A missing value never clashes (as an SQL NULL does not).
    """
    paths = parametrize(Path, type(resource)).iter_paths(
        include_subattributes=False, uniqueness=[Uniqueness.server, Uniqueness.global_]
    )
    values: dict[str, str] = {}
    for path in paths:
        binding = cast(AttributeBinding, path.resolve())
        raw = parametrize(Path, type(resource))(binding.urn).get(resource, strict=False)
        try:
            comparable = binding.comparable(raw)
        except ValueError:
            # A value the policy cannot compare equals nothing else: treat it as missing.
            continue
        if comparable is not None:
            values[binding.urn] = json.dumps(comparable, default=repr, sort_keys=True)
    return values
