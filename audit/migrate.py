"""Bring an access record to the newest schema: Alembic revisions, applied when the store opens.

No `alembic.ini` is needed: the configuration is built here, pointing at `audit/migrations/`, and
the revisions run on the store's own connection, in one transaction that holds the record's
migration lock (SQLite's write lock taken with BEGIN IMMEDIATE; a PostgreSQL advisory lock). So
the worker and the API opening a new record at the same moment migrate it once; the other waits,
then finds it current. PostgreSQL's DDL is transactional, and so is SQLite's on this connection: a
failed migration leaves the record as it was.

Records made by releases before Alembic carry a `schema_version` table (version 1: requests, story
lines, waiting approvers, access changes; version 2 added `hr_events`) and no `alembic_version`.
They are adopted: stamped with the revision that made the same tables (`LEGACY_REVISIONS`), the
`schema_version` table dropped, then upgraded like any other. Their rows stay as they are.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from audit import schema
from audit.location import WRITE
from audit.model import AccessRecordError

log = logging.getLogger("tenure.audit")

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
# schema_version of the releases before Alembic -> the revision that creates the same tables.
LEGACY_REVISIONS = {1: "0001", 2: "0002"}
_V1_TABLES = frozenset({"requests", "story_lines", "waiting_approvers", "access_changes"})
LEGACY_TABLES = {1: _V1_TABLES, 2: _V1_TABLES | {"hr_events"}}
# pg_advisory_xact_lock key of the record's migrations (any constant; "tenure" in ASCII).
_PG_LOCK_KEY = 0x74656E757265


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in code; `connection` is the one the revisions run on."""
    config = Config()
    # ConfigParser interpolates "%": a path holding one must not be read as a reference.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None, f"no Alembic revisions in {MIGRATIONS}"
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in _script().walk_revisions()}


def migrate(engine: Engine, where: str) -> str:
    """Upgrade the record to the newest revision (creating it if empty); returns that revision."""
    head = head_revision()
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            current = _current_revision(conn, where)
            if current == head:
                return head
            if current is not None and current not in known_revisions():
                raise AccessRecordError(
                    f"{where}: the access record is at schema revision {current!r}, newer than "
                    f"this Tenure's ({head!r}); upgrade Tenure before using this record"
                )
            command.upgrade(alembic_config(conn), "head")
            log.info("access record %s migrated from %s to %s", where, current or "empty", head)
    return head


def current_revision(engine: Engine) -> str | None:
    """The record's revision as stored, without changing anything."""
    with engine.connect() as conn:
        if "alembic_version" not in inspect(conn).get_table_names():
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _current_revision(conn: Connection, where: str) -> str | None:
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        # Read as stored: alembic's MigrationContext would log two lines at every store open.
        revisions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        if len(revisions) > 1:
            raise AccessRecordError(f"{where}: alembic_version holds several revisions {revisions}")
        return revisions[0] if revisions else None
    if "schema_version" in tables:
        return _adopt(conn, where, tables)
    ours = sorted(tables & set(schema.metadata.tables))
    if ours:
        raise AccessRecordError(
            f"{where} already has tables named like the access record's ({', '.join(ours)}) but "
            "no record of their schema (alembic_version): give Tenure a database (or a "
            "PostgreSQL schema, ?options=-csearch_path%3D...) of its own"
        )
    return None


def _adopt(conn: Connection, where: str, tables: set[str]) -> str | None:
    """Stamp a record of the releases before Alembic; None if it has none of the tables yet."""
    version = conn.execute(text("SELECT MAX(version) FROM schema_version")).scalar()
    if version is None:
        raise AccessRecordError(f"{where}: its schema_version table is empty; restore the file")
    revision = LEGACY_REVISIONS.get(int(version))
    if revision is None:
        newest = max(LEGACY_REVISIONS)
        raise AccessRecordError(
            f"{where}: schema version {version} is newer than this Tenure's ({newest}); upgrade "
            "Tenure before using this file"
        )
    present = tables & LEGACY_TABLES[max(LEGACY_TABLES)]
    if not present:
        revision = None  # only the version was ever written: the revisions create everything
    elif present != LEGACY_TABLES[int(version)]:
        raise AccessRecordError(
            f"{where}: says schema version {version} but has the tables {sorted(present)}, not "
            f"{sorted(LEGACY_TABLES[int(version)])}; restore the file from a backup"
        )
    else:
        command.stamp(alembic_config(conn), revision)
    conn.execute(text("DROP TABLE schema_version"))
    log.info("access record %s: schema version %s adopted as revision %s", where, version, revision)
    return revision
