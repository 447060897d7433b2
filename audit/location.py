"""Where the access record lives, and the SQLAlchemy engine that reaches it.

The environment names the record with exactly one of:
- `TENURE_ACCESS_RECORD_DB`: a SQLite file (the embedded default; the local stack uses
  `.tenure/access-record.db`);
- `TENURE_ACCESS_RECORD_URL`: a database URL, `postgresql+psycopg://user@host:5432/dbname`
  (`postgresql://` means the same; psycopg 3 is the only PostgreSQL driver Tenure ships), or
  `sqlite:///relative/path.db` / `sqlite:////absolute/path.db`.
Both set is refused: one of them would be silently ignored, and the worker and the API must agree.

The PostgreSQL password comes from the URL (percent-encoded) or from the file named by
`TENURE_ACCESS_RECORD_PASSWORD_FILE` (a mounted secret; one line, its line ending dropped), never
both. The file is read once, when the process starts. libpq's own `PGPASSWORD` and `~/.pgpass`
work as well, since psycopg uses libpq. Query parameters of the URL go to libpq as they are
(`?sslmode=verify-full`, `?options=-csearch_path%3Dtenure`, ...).

SQLite runs in WAL mode (readers never block the writer nor each other) with a busy timeout, and
every write transaction starts with `BEGIN IMMEDIATE`, so a write never fails upgrading a read lock.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from audit.model import AccessRecordError

ENV_VAR = "TENURE_ACCESS_RECORD_DB"
URL_VAR = "TENURE_ACCESS_RECORD_URL"
PASSWORD_FILE_VAR = "TENURE_ACCESS_RECORD_PASSWORD_FILE"
BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 10
# Execution option of the connections that write: on SQLite their transaction takes the write lock
# up front (BEGIN IMMEDIATE).
WRITE = "tenure_record_write"

_EXAMPLES = "postgresql+psycopg://user@host:5432/dbname or sqlite:////absolute/path/record.db"


def store_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The record's SQLite file, from TENURE_ACCESS_RECORD_DB (required)."""
    env = os.environ if environ is None else environ
    value = (env.get(ENV_VAR) or "").strip()
    if not value:
        raise AccessRecordError(
            f"{ENV_VAR} is not set: name the SQLite file that keeps the access record "
            "(for example .tenure/access-record.db); the worker writes it, the API reads it"
        )
    return Path(value).expanduser()


def record_url_from_env(
    environ: Mapping[str, str] | None = None, *, required: bool = True
) -> URL | None:
    """The record's URL from TENURE_ACCESS_RECORD_URL or TENURE_ACCESS_RECORD_DB (one of them).

    None when neither is set and not `required`; AccessRecordError, naming the variable, when the
    settings cannot work.
    """
    env = os.environ if environ is None else environ
    url_text = (env.get(URL_VAR) or "").strip()
    path_text = (env.get(ENV_VAR) or "").strip()
    password_file = (env.get(PASSWORD_FILE_VAR) or "").strip()
    if url_text and path_text:
        raise AccessRecordError(
            f"both {URL_VAR} and {ENV_VAR} are set: set only one, {URL_VAR} for a database URL "
            f"(PostgreSQL) or {ENV_VAR} for a SQLite file"
        )
    if not url_text and not path_text:
        if password_file:
            raise AccessRecordError(
                f"{PASSWORD_FILE_VAR} is set but {URL_VAR} is not: the password file is for the "
                "PostgreSQL server that URL names"
            )
        if not required:
            return None
        raise AccessRecordError(
            f"no access record: set {ENV_VAR} to the SQLite file that keeps it (for example "
            f".tenure/access-record.db), or {URL_VAR} to a PostgreSQL URL ({_EXAMPLES}); the "
            "worker writes it, the API reads it"
        )
    if path_text:
        if password_file:
            raise AccessRecordError(
                f"{PASSWORD_FILE_VAR} is set but the record is the SQLite file {ENV_VAR}: a "
                f"password is only for a PostgreSQL server named by {URL_VAR}"
            )
        return sqlite_url(Path(path_text))
    url = parse_record_url(url_text, source=URL_VAR)
    if password_file:
        url = _with_password_from(url, password_file)
    return url


def record_url(location: str | Path | URL) -> URL:
    """A Path (or text without `://`) is a SQLite file; text with a scheme is a database URL."""
    if isinstance(location, URL):
        return parse_record_url(location, source="the access record URL")
    if isinstance(location, Path) or "://" not in location:
        return sqlite_url(Path(location))
    return parse_record_url(location, source="the access record URL")


def sqlite_url(path: Path) -> URL:
    return URL.create("sqlite+pysqlite", database=str(path.expanduser()))


def parse_record_url(raw: str | URL, *, source: str) -> URL:
    """A URL Tenure can use, or AccessRecordError naming `source` (never showing a password)."""
    try:
        url = raw if isinstance(raw, URL) else make_url(raw)
    except (ArgumentError, ValueError):
        raise AccessRecordError(
            f"{source}={_redacted_text(str(raw))!r} is not a database URL: expected {_EXAMPLES}"
        ) from None
    shown = redacted(url)
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise AccessRecordError(f"{source}={shown!r}: the SQLite driver is pysqlite")
        if url.host or url.username or url.password or url.port or url.query:
            raise AccessRecordError(
                f"{source}={shown!r}: a sqlite URL names a file only, with three slashes before a "
                "relative path (sqlite:///record.db) and four before an absolute one "
                "(sqlite:////var/lib/tenure/record.db)"
            )
        if not url.database or url.database == ":memory:":
            raise AccessRecordError(
                f"{source}={shown!r} names no file: an in-memory database is not shared between "
                "the worker and the API, and is lost on exit"
            )
        return sqlite_url(Path(url.database))
    if backend == "postgresql":
        if driver not in ("", "psycopg"):
            raise AccessRecordError(
                f"{source}={shown!r}: the PostgreSQL driver Tenure ships is psycopg 3; write "
                "postgresql+psycopg:// (or postgresql://)"
            )
        if not url.database:
            raise AccessRecordError(
                f"{source}={shown!r} names no database: add it after the host, as in {_EXAMPLES}"
            )
        return url.set(drivername="postgresql+psycopg")
    raise AccessRecordError(
        f"{source}={shown!r}: {backend!r} is not a database Tenure's access record runs on; "
        f"use PostgreSQL or SQLite ({_EXAMPLES})"
    )


def redacted(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _redacted_text(raw: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", raw)


def _with_password_from(url: URL, path_text: str) -> URL:
    if url.get_backend_name() != "postgresql":
        raise AccessRecordError(
            f"{PASSWORD_FILE_VAR} is set but {URL_VAR} names a SQLite file, which takes no password"
        )
    if url.password is not None:
        raise AccessRecordError(
            f"{URL_VAR} has a password and {PASSWORD_FILE_VAR} is set: give the password one way"
        )
    path = Path(path_text).expanduser()
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as err:
        raise AccessRecordError(f"{PASSWORD_FILE_VAR}={path_text}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise AccessRecordError(f"{PASSWORD_FILE_VAR}={path_text} is not UTF-8 text") from None
    if not password:
        raise AccessRecordError(f"{PASSWORD_FILE_VAR}={path_text} is empty")
    return url.set(password=password)


def create_record_engine(url: URL) -> Engine:
    """An engine with a small pool: every store call takes a connection and gives it back."""
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000},
            # Connections to a file are cheap: keep a few, never make a thread wait for one.
            max_overflow=-1,
        )
        event.listen(engine, "connect", _sqlite_connected)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url,
        # A server restart or a dropped idle connection costs one ping, not a failed write.
        pool_pre_ping=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "tenure"},
    )


def _sqlite_connected(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would BEGIN lazily and DEFERRED; take it over (the
    # SQLAlchemy documentation's recipe), so `_sqlite_begin` decides how each transaction starts.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Reads get one snapshot for all their statements; writes take the write lock up front.
    immediate = connection.get_execution_options().get(WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def ensure_wal(engine: Engine, where: str) -> None:
    """Put the SQLite file in WAL mode (persistent in the file), or AccessRecordError.

    Switching needs the file to itself for a moment. When another process or thread holds the
    write lock (say, the other of the worker and the API migrating a new file), SQLite answers
    "locked" at once rather than wait (its busy handler would risk a deadlock): try again until
    the busy timeout has passed.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            cursor.close()
            break
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise AccessRecordError(f"{where}: cannot put it in WAL mode: {err}") from err
        finally:
            raw.close()
        time.sleep(0.02)
    if str(mode).lower() != "wal":
        raise AccessRecordError(f"{where}: SQLite refused WAL mode (got {mode!r})")
