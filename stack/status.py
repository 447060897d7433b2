"""`tenure stack status`: ask every endpoint named in stack.json whether it answers."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from stack import readiness


@dataclass(frozen=True)
class Check:
    part: str
    where: str
    problem: str | None  # None when it answers

    @property
    def ok(self) -> bool:
        return self.problem is None


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, just not ours
    return True


async def _check(part: str, where: str, probe: readiness.Probe, within_s: float = 8.0) -> Check:
    try:
        problem = await asyncio.wait_for(probe(), within_s)
    except TimeoutError:
        problem = f"no answer within {within_s:.0f}s"
    except Exception as exc:
        problem = f"{exc.__class__.__name__}: {exc}"
    return Check(part, where, problem)


async def check_stack(stack: dict[str, Any]) -> list[Check]:
    temporal, api, graph = stack["temporal"], stack["api"], stack["graph"]
    probes = [
        _check(
            "Temporal",
            temporal["address"],
            lambda: readiness.temporal_ready(temporal["address"], temporal["namespace"]),
        ),
        _check("Temporal UI", temporal["ui_url"], lambda: readiness.http_ok(temporal["ui_url"])),
        _check("API", api["url"], lambda: readiness.http_ok(f"{api['url']}/healthz")),
        _check(
            "Graph emulator",
            graph["url"],
            lambda: readiness.http_ok(f"{graph['control_url']}/health", graph["token"]),
        ),
    ]
    for app, info in stack.get("scim_apps", {}).items():
        url, token = f"{info['url']}/ServiceProviderConfig", info["token"]
        probes.append(
            _check(
                f"SCIM {app}",
                info["url"],
                lambda url=url, token=token: readiness.http_ok(url, token),
            )
        )
    checks = list(await asyncio.gather(*probes))
    for name, pid in stack.get("processes", {}).items():
        problem = None if pid_alive(pid) else "process is not running"
        checks.append(Check(f"process {name}", f"pid {pid}", problem))
    return checks
