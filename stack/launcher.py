"""Start a whole local stack as a subprocess, on free ports in a throwaway home: for tests and benchmarks.

It runs the very command `make run` runs (`tenure stack run`), so what tests and benchmarks exercise is
what a newcomer gets.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack.stack_file import stack_file_path

PORT_VARIABLES = (
    "TENURE_TEMPORAL_PORT",
    "TENURE_TEMPORAL_UI_PORT",
    "TENURE_API_PORT",
    "TENURE_GRAPH_PORT",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_block(size: int) -> int:
    """A base port with `size` consecutive free ports above it (for the SCIM apps)."""
    for _ in range(50):
        base = free_port()
        if base + size >= 65535:
            continue
        ports_free = True
        for port in range(base, base + size):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ports_free = False
                    break
        if ports_free:
            return base
    raise RuntimeError("no block of free ports found")


@dataclass
class LaunchedStack:
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def info(self) -> dict[str, Any]:
        return json.loads(stack_file_path(self.home).read_text())

    def pid_of(self, name: str) -> int:
        return int(self.info()["processes"][name])


@contextlib.contextmanager
def launched_stack(
    home: Path,
    *,
    policy: Path | None = None,
    extra_env: dict[str, str] | None = None,
    ready_within_s: float = 180.0,
    demo: bool = False,
) -> Iterator[LaunchedStack]:
    """`demo`: post the demo HR feed and make the demo requests, as `make run` does."""
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({name: str(free_port()) for name in PORT_VARIABLES})
    env["TENURE_SCIM_BASE_PORT"] = str(_free_block(8))
    env["TENURE_HOME"] = str(home)
    env["TENURE_DEMO"] = "1" if demo else "0"
    if policy is not None:
        env["TENURE_POLICY"] = str(policy)
    env.update(extra_env or {})
    log_path = home / "stack-run.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "stack", "run", *([] if demo else ["--no-demo"])],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent,
    )
    stack = LaunchedStack(home=home, process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + ready_within_s
        while not stack_file_path(home).exists():
            if process.poll() is not None:
                raise RuntimeError(f"the stack exited early:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the stack was not ready in {ready_within_s}s:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.2)
        yield stack
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
