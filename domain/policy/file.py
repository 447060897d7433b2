"""Loading the policy file: YAML in, a validated Policy out, or an error naming file, path and reason."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from domain.policy.model import Policy

DEFAULT_POLICY_PATH = Path(__file__).resolve().parents[2] / "demo" / "policy.yaml"


class PolicyFileError(Exception):
    """The policy file cannot be used; the message names the file, where in it, and why."""


def _path_text(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def load_policy(path: str | os.PathLike[str]) -> Policy:
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyFileError(f"{file}: policy file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PolicyFileError(
            f"{file}{where}: not valid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(raw, dict):
        raise PolicyFileError(f"{file}: (top level): expected a mapping of policy sections")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{file}: {_path_text(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise PolicyFileError("invalid policy\n  " + "\n  ".join(lines)) from None


def policy_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("TENURE_POLICY") or DEFAULT_POLICY_PATH)
