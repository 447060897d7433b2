"""Which record a process opens: the environment, URLs, passwords and their errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from api.settings import ApiSettings, SettingsError
from audit.location import sqlite_url
from audit.migrate import head_revision
from audit.store import (
    AccessRecordError,
    AccessRecordStore,
    record_url_from_env,
)
from stack.launcher import free_port
from tests.record.views import REPO

# ---- naming the record -------------------------------------------------------------------------


def test_the_record_url_comes_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "access.db"
    assert record_url_from_env({"TENURE_ACCESS_RECORD_DB": str(path)}) == sqlite_url(path)
    assert record_url_from_env({"TENURE_ACCESS_RECORD_URL": f"sqlite:///{path}"}) == sqlite_url(
        path
    )
    pg = record_url_from_env({"TENURE_ACCESS_RECORD_URL": "postgresql://tenure@db:5432/record"})
    assert pg is not None and pg.drivername == "postgresql+psycopg" and pg.database == "record"
    assert record_url_from_env({}, required=False) is None
    with pytest.raises(
        AccessRecordError, match=r"TENURE_ACCESS_RECORD_DB.*TENURE_ACCESS_RECORD_URL"
    ):
        record_url_from_env({})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("postgresql://u@h:notaport/db", "is not a database URL"),
        ("no scheme here://", "is not a database URL"),
        ("mysql://u@h/db", "'mysql' is not a database"),
        ("postgresql+asyncpg://u@h/db", "psycopg 3"),
        ("postgresql://u@h:5432", "names no database"),
        ("sqlite://", "names no file"),
        ("sqlite:///:memory:", "names no file"),
        ("sqlite://host/record.db", "names a file only"),
    ],
)
def test_a_bad_record_url_is_refused_naming_the_variable(value: str, message: str) -> None:
    with pytest.raises(AccessRecordError, match=message) as refused:
        record_url_from_env({"TENURE_ACCESS_RECORD_URL": value})
    assert str(refused.value).startswith("TENURE_ACCESS_RECORD_URL=")


def test_both_variables_set_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AccessRecordError, match="both TENURE_ACCESS_RECORD_URL and"):
        record_url_from_env(
            {
                "TENURE_ACCESS_RECORD_URL": "postgresql://u@h/db",
                "TENURE_ACCESS_RECORD_DB": str(tmp_path / "a.db"),
            }
        )


def test_the_password_comes_from_a_file_and_is_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cr%t:@/\n")
    env = {
        "TENURE_ACCESS_RECORD_URL": "postgresql+psycopg://tenure@db.internal:5432/record",
        "TENURE_ACCESS_RECORD_PASSWORD_FILE": str(secret),
    }
    url = record_url_from_env(env)
    assert url is not None and url.password == "s3cr%t:@/"
    assert "s3cr" not in str(url) and "s3cr" not in repr(url)

    def refused(**changes: str) -> str:
        with pytest.raises(AccessRecordError) as err:
            record_url_from_env({**env, **changes})
        assert "s3cr" not in str(err.value)
        return str(err.value)

    assert "give the password one way" in refused(
        TENURE_ACCESS_RECORD_URL="postgresql://tenure:other@db/record"
    )
    assert "No such file" in refused(TENURE_ACCESS_RECORD_PASSWORD_FILE=str(tmp_path / "none"))
    (tmp_path / "empty").write_text("\n")
    assert "is empty" in refused(TENURE_ACCESS_RECORD_PASSWORD_FILE=str(tmp_path / "empty"))
    assert "takes no password" in refused(TENURE_ACCESS_RECORD_URL="sqlite:///record.db")
    with pytest.raises(AccessRecordError, match="only for a PostgreSQL server"):
        record_url_from_env(
            {"TENURE_ACCESS_RECORD_DB": "a.db", "TENURE_ACCESS_RECORD_PASSWORD_FILE": str(secret)}
        )
    with pytest.raises(AccessRecordError, match="TENURE_ACCESS_RECORD_PASSWORD_FILE is set but"):
        record_url_from_env({"TENURE_ACCESS_RECORD_PASSWORD_FILE": str(secret)})
    with pytest.raises(AccessRecordError, match="is not a database URL") as bad:
        record_url_from_env({"TENURE_ACCESS_RECORD_URL": "postgresql://u:s3cret@h:x/db"})
    assert "s3cret" not in str(bad.value)


def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    url = f"postgresql+psycopg://tenure:s3cret@127.0.0.1:{free_port()}/record"
    with pytest.raises(AccessRecordError, match="cannot open the access record at") as refused:
        AccessRecordStore(url)
    assert "s3cret" not in str(refused.value) and "127.0.0.1" in str(refused.value)


def test_the_migrate_command_migrates_the_record_the_environment_names(
    record_url: URL,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_ACCESS_RECORD_")}
    env["TENURE_ACCESS_RECORD_URL"] = record_url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-m", "audit", "migrate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"schema revision {head_revision()}" in done.stdout
    env["TENURE_ACCESS_RECORD_URL"] = "mysql://nowhere/db"
    refused = subprocess.run(
        [sys.executable, "-m", "audit", "migrate"], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and "TENURE_ACCESS_RECORD_URL=" in refused.stderr


def test_the_api_settings_take_the_record_url_and_refuse_both_variables(tmp_path: Path) -> None:
    base = {"TENURE_INTAKE_TOKEN": "t"}
    settings = ApiSettings.from_env({**base, "TENURE_ACCESS_RECORD_URL": "postgresql://u@h/db"})
    assert settings.access_record_url == record_url_from_env(
        {"TENURE_ACCESS_RECORD_URL": "postgresql+psycopg://u@h/db"}
    )
    assert settings.access_record_db is None
    on_file = ApiSettings.from_env({**base, "TENURE_ACCESS_RECORD_DB": str(tmp_path / "r.db")})
    assert on_file.access_record_url is None and on_file.access_record_db == tmp_path / "r.db"
    with pytest.raises(SettingsError, match="both TENURE_ACCESS_RECORD_URL and"):
        ApiSettings.from_env(
            {**base, "TENURE_ACCESS_RECORD_URL": "postgresql://u@h/db",
             "TENURE_ACCESS_RECORD_DB": "r.db"}
        )  # fmt: skip
