"""Where the CLI finds Temporal: TEMPORAL_* variables if set, else the running local stack."""

from __future__ import annotations

import os

from connection.temporal import TemporalSettings
from stack.stack_file import read_stack_file


def temporal_settings() -> TemporalSettings:
    if "TEMPORAL_ADDRESS" in os.environ:
        return TemporalSettings.from_env()
    stack = read_stack_file()
    if stack is None:
        raise SystemExit(
            "tenure: no Temporal to talk to: set TEMPORAL_ADDRESS, or start the local stack with `make run`"
        )
    return TemporalSettings(
        address=stack["temporal"]["address"], namespace=stack["temporal"]["namespace"]
    )
