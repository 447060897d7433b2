"""Workflows decide, activities act (docs/architecture.md, rule 1): importing every workflow and
domain module pulls in no I/O library, so no workflow can reach the network or a database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IO_LIBRARIES = ("httpx", "httpcore", "msgraph", "kiota_http", "sqlalchemy", "sqlite3", "psycopg",
                "alembic", "fastapi", "uvicorn", "requests", "aiohttp", "socket_io")  # fmt: skip


def _modules(folder: str) -> list[str]:
    return sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / folder).rglob("*.py")
    )


def test_workflow_and_domain_modules_import_no_io_library() -> None:
    modules = _modules("workflows") + _modules("domain")
    assert len(modules) > 40
    probe = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    )
    found = sorted(m for m in loaded if m.split(".")[0] in IO_LIBRARIES)
    assert found == []
