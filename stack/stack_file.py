"""`.tenure/stack.json`: where a running local stack says what its endpoints and dev credentials are."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

STACK_FILE_NAME = "stack.json"


def tenure_home() -> Path:
    """The state folder of the local stack: $TENURE_HOME, else `.tenure` in the current folder."""
    return Path(os.environ.get("TENURE_HOME", ".tenure")).resolve()


def stack_file_path(home: Path | None = None) -> Path:
    return (home or tenure_home()) / STACK_FILE_NAME


def read_stack_file(home: Path | None = None) -> dict[str, Any] | None:
    """The running stack's description, or None when no stack is running here."""
    path = stack_file_path(home)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def write_stack_file(content: dict[str, Any], home: Path | None = None) -> Path:
    path = stack_file_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a reader never sees half a file; it holds dev credentials: owner only.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def remove_stack_file(home: Path | None = None) -> None:
    stack_file_path(home).unlink(missing_ok=True)
