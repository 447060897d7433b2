"""Every test that takes `store` runs twice: on a SQLite file and on a fresh PostgreSQL database of
a real server the tests start (`tests/support/postgres.py`; skipped where PostgreSQL is not installed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from audit.location import sqlite_url
from audit.store import (
    AccessRecordStore,
)
from tests.support.postgres import PostgresServer, postgres  # noqa: F401 (a fixture)


@pytest.fixture(params=["sqlite", "postgresql"])
def record_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[URL]:
    """A record nobody has opened yet: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "record" / "access.db")
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def store(record_url: URL) -> Iterator[AccessRecordStore]:
    opened = AccessRecordStore(record_url)
    yield opened
    opened.close()
