"""A real PostgreSQL server for tests, started from the machine's PostgreSQL binaries (no downloads).

    def test_something(postgres: PostgresServer) -> None:
        url = postgres.create_database()   # a fresh, empty database
        ...
        postgres.drop_database(url)

`postgres` is session-scoped: the server starts once (about a second), on a free port on
127.0.0.1, in a temporary directory removed when the session ends. Where `initdb` and `pg_ctl`
are missing, tests that ask for it are skipped, saying so.

initdb and postgres refuse to run as root: as root, the server runs as the `postgres` user (its
data directory owned by it), and the tests connect over TCP as the `postgres` role with trust
authentication. Durability is off (fsync, synchronous_commit): the data lives as long as the test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from stack.launcher import free_port

SKIP_REASON = "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH"
HOST = "127.0.0.1"
SUPERUSER = "postgres"


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be started here; the message says why (used as the skip reason)."""


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    base: Path
    # Whether new databases sort text by ICU's en-US rules (when the server has ICU), so that
    # tests see an order that differs from byte order unless a column says COLLATE "C".
    icu: bool = False

    def url(self, database: str = "postgres") -> URL:
        return URL.create(
            "postgresql+psycopg",
            username=self.user,
            host=self.host,
            port=self.port,
            database=database,
        )

    def admin(self, sql: str) -> None:
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(sql))
        finally:
            engine.dispose()

    def create_database(self, prefix: str = "tenure") -> URL:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        options = " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'" if self.icu else ""
        self.admin(f'CREATE DATABASE "{name}"{options}')
        return self.url(name)

    def drop_database(self, url: URL) -> None:
        # FORCE: connections a test left in a pool are ended, not waited for.
        self.admin(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def server_binaries() -> tuple[str, str] | None:
    """(initdb, pg_ctl) from PATH, else from Debian's /usr/lib/postgresql/<newest>/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0],
        reverse=True,
    )
    for bindir in versions:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return str(bindir / "initdb"), str(bindir / "pg_ctl")
    return None


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throwaway server; PostgresUnavailable when there is nothing to start it with."""
    binaries = server_binaries()
    if binaries is None:
        raise PostgresUnavailable(SKIP_REASON)
    initdb, pg_ctl = binaries
    run_as: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="tenure-pg-"))
    try:
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root, and there is no `postgres` user to run the PostgreSQL "
                    "server as (initdb and postgres refuse root)"
                ) from None
            os.chown(base, owner.pw_uid, owner.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
        data, log = base / "data", base / "log"

        def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
            # cwd: the server's user may not be allowed into the test's working directory.
            return subprocess.run(
                [*run_as, *argv], cwd=base, capture_output=True, text=True, timeout=120, check=check
            )

        try:
            run(initdb, "-D", str(data), "-A", "trust", "-U", SUPERUSER, "--no-locale",
                "-E", "UTF8", "--no-sync")  # fmt: skip
        except subprocess.CalledProcessError as err:
            raise RuntimeError(f"initdb failed:\n{err.stdout}\n{err.stderr}") from None
        port = _start(run, pg_ctl, data, log, base)
        server = PostgresServer(HOST, port, SUPERUSER, base)
        try:
            server.icu = _has_icu(server)
            yield server
        finally:
            stopped = run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop", check=False)
            if stopped.returncode != 0:
                run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _start(run: object, pg_ctl: str, data: Path, log: Path, base: Path) -> int:
    """Start on a free port (another process may take it between the check and the bind: retry)."""
    assert callable(run)
    failure = ""
    for _ in range(3):
        port = free_port()
        options = " ".join(
            [
                f"-p {port}",
                f"-k {shlex.quote(str(base))}",
                f"-c listen_addresses={HOST}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        started = run(pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options,
                      "start", check=False)  # fmt: skip
        if started.returncode == 0:
            return port
        failure = log.read_text() if log.exists() else started.stderr
        run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop", check=False)
    raise RuntimeError(f"the PostgreSQL server did not start:\n{failure[-3000:]}")


def _has_icu(server: PostgresServer) -> bool:
    engine = create_engine(server.url())
    try:
        with engine.connect() as conn:
            return bool(
                conn.execute(
                    text("SELECT count(*) FROM pg_collation WHERE collprovider = 'i'")
                ).scalar()
            )
    finally:
        engine.dispose()


# One server for the whole session, however many test modules import the fixture (pytest makes a
# fixture per importing module; they share the server and the last one to finish stops it).
_shared: list[PostgresServer] = []
_stack = contextlib.ExitStack()
_users = 0


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    global _users
    if not _shared:
        try:
            _shared.append(_stack.enter_context(postgres_server()))
        except PostgresUnavailable as why:
            pytest.skip(str(why))
    _users += 1
    try:
        yield _shared[0]
    finally:
        _users -= 1
        if _users == 0:
            _shared.clear()
            _stack.close()
