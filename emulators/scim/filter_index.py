"""The index that answers `eq` filters of SqliteStorage without reading every resource.

A table indexes the comparison keys of a few singular string attributes (`id`, `externalId`,
`userName`, `displayName`), so that the lookups a provisioning client makes on every call
(`externalId eq "E123"`) read one row instead of deserializing every resource of the type.

The index lives in the storage's SQLite file, next to the `resources` table it points into
(`resource_type`, `id`, `body`), and is written in the storage's transactions: it changes only
together with the resources it indexes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from scim2_models import (
    AttributeBinding,
    Path,
    Resource,
    ResourceType,
    ScimFilter,
    ScimProvider,
)
from scim2_models.path import CompareOperator, Comparison, coerce_value
from scim2_server.utils import parametrize

SCHEMA = """
CREATE TABLE IF NOT EXISTS search_keys (
    resource_type TEXT NOT NULL,
    urn TEXT NOT NULL,
    key TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (resource_type, urn, key, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS search_keys_owner ON search_keys (resource_type, id);
CREATE TABLE IF NOT EXISTS search_key_sets (
    resource_type TEXT PRIMARY KEY,
    signature TEXT NOT NULL
);
"""

# The attributes whose `eq` searches are answered from `search_keys`, when the resource type
# declares them as singular strings of its core schema.
_SEARCH_KEY_ATTRIBUTES = ("id", "externalId", "userName", "displayName")
# Bump when what `search_keys` holds changes: every resource type is then indexed again on open.
_SEARCH_KEY_FORMAT = 1


class SearchKeyIndex:
    """The `search_keys` of one SQLite connection, for the resource types of `provider`.

    Indexed values are compared in the form `AttributeBinding.comparable` gives under the policy of
    `provider`, the one scim2-server runs every request under: like scim2-server's own storages,
    the storage serves the resources of a single policy. The caller holds the connection's lock
    around every call, and its write transaction around `index` and `forget`.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        provider: ScimProvider,
        load: Callable[[ResourceType, str], Resource[Any]],
    ) -> None:
        self._db = db
        self._provider = provider
        self._load = load
        # resource type name -> the indexed attributes of its model, by URN.
        self._bindings: dict[str, dict[str, AttributeBinding]] = {}

    def open(
        self,
        resource_type: ResourceType,
        transaction: Callable[[], AbstractContextManager[None]],
    ) -> None:
        """Index the resources of a type, unless the file already indexes them as this code would.

        A file written before the index existed, or under other indexed attributes or another
        comparison, has no matching signature: its keys are rebuilt from the stored JSON.
        """
        model = self._provider.model_for(resource_type)
        if model is None:
            return
        bindings = _search_key_bindings(model)
        if not bindings:
            return
        key_function = self._provider.policy.comparison_key
        signature = json.dumps(
            [
                _SEARCH_KEY_FORMAT,
                f"{key_function.__module__}.{key_function.__qualname__}",
                sorted(bindings),
            ]
        )
        name = resource_type.name
        self._bindings[name] = bindings
        stored = self._db.execute(
            "SELECT signature FROM search_key_sets WHERE resource_type = ?", (name,)
        ).fetchone()
        if stored is not None and stored[0] == signature:
            return
        with transaction():
            self._db.execute("DELETE FROM search_keys WHERE resource_type = ?", (name,))
            for (body,) in self._db.execute(
                "SELECT body FROM resources WHERE resource_type = ?", (name,)
            ).fetchall():
                self.index(name, self._load(resource_type, body))
            self._db.execute(
                "INSERT INTO search_key_sets (resource_type, signature) VALUES (?, ?) "
                "ON CONFLICT (resource_type) DO UPDATE SET signature = excluded.signature",
                (name, signature),
            )

    def index(self, name: str, resource: Resource[Any]) -> None:
        """Add the keys of a resource of the type `name`."""
        bindings = self._bindings.get(name, {})
        rows = []
        for urn, binding in bindings.items():
            key = self._key(binding, getattr(resource, binding.field_name, None))
            if key is not None:
                rows.append((name, urn, key, resource.id))
        self._db.executemany(
            "INSERT OR IGNORE INTO search_keys (resource_type, urn, key, id) VALUES (?, ?, ?, ?)",
            rows,
        )

    def forget(self, name: str, resource_id: str) -> None:
        """Drop the keys of a resource of the type `name`."""
        self._db.execute(
            "DELETE FROM search_keys WHERE resource_type = ? AND id = ?", (name, resource_id)
        )

    def rows(
        self, resource_types: list[ResourceType], scim_filter: ScimFilter[Any] | None
    ) -> list[tuple[str, str]] | None:
        """The rows an `eq` on an indexed attribute can match, or None when the index cannot tell.

        The rows (resource type, body) hold every match (the keys are those scim2-models compares);
        the search still runs the filter over them, so the index only narrows the candidates, never
        decides a match.
        """
        if scim_filter is None or len(resource_types) != 1:
            return None
        node = scim_filter.ast
        if not (
            isinstance(node, Comparison)
            and node.op == CompareOperator.eq
            and isinstance(node.value, str)
        ):
            return None
        name = resource_types[0].name
        bindings = self._bindings.get(name)
        model = self._provider.model_for(resource_types[0])
        if not bindings or model is None:
            return None
        bound = scim_filter if scim_filter.model is model else parametrize(ScimFilter, model)(node)
        binding = bound.resolve_comparison(node.attr_path, strict=False)
        if binding is None or bindings.get(binding.urn) != binding:
            return None
        key = self._key(binding, coerce_value(binding, node.value, node.op))
        if key is None:
            return None
        return self._db.execute(
            "SELECT r.resource_type, r.body FROM search_keys AS k "
            "JOIN resources AS r ON r.resource_type = k.resource_type AND r.id = k.id "
            "WHERE k.resource_type = ? AND k.urn = ? AND k.key = ? ORDER BY r.rowid",
            (name, binding.urn, key),
        ).fetchall()

    def _key(self, binding: AttributeBinding, value: Any) -> str | None:
        """The form an indexed value is compared in, or None when it equals no string."""
        if not isinstance(value, str):
            return None
        try:
            key = binding.comparable(value, self._provider.policy)
        except ValueError:
            # A string the policy cannot prepare equals no other (scim2-models' own rule).
            return None
        return key if isinstance(key, str) else None


def _search_key_bindings(model: type[Resource[Any]]) -> dict[str, AttributeBinding]:
    """The indexed attributes a model declares, by URN: singular strings of its core schema."""
    bindings = {}
    for name in _SEARCH_KEY_ATTRIBUTES:
        binding = parametrize(Path, model)(name).resolve()  # None when the model lacks it
        if (
            isinstance(binding, AttributeBinding)
            and binding.model is model
            and binding.sub_field_name is None
            and not binding.is_multivalued
            and binding.target_type is str
        ):
            bindings[binding.urn] = binding
    return bindings
