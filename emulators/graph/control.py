"""Test controls: injected faults and the request log (served under /_emulator)."""

from __future__ import annotations

import itertools
import random
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from emulators.graph.errors import GraphError, bad_request

FAULT_CODES = {
    429: ("TooManyRequests", "Too many requests, please retry after the indicated time."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable, please retry later."),
}


@dataclass
class Fault:
    id: int
    status: int
    retry_after: int
    path: str
    method: str | None
    times: int | None
    share: float
    rng: random.Random
    hits: int = 0
    _regex: re.Pattern[str] | None = field(default=None, repr=False)

    def matches(self, method: str, target: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        subject = f"{method} {target}"
        if self.path not in subject and (self._regex is None or not self._regex.search(subject)):
            return False
        return self.share >= 1.0 or self.rng.random() < self.share

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "retry_after": self.retry_after,
            "path": self.path,
            "method": self.method,
            "times": self.times,
            "share": self.share,
            "hits": self.hits,
        }


class Faults:
    def __init__(self) -> None:
        self._faults: dict[int, Fault] = {}
        self._ids = itertools.count(1)

    def add(self, spec: Any) -> Fault:
        if not isinstance(spec, dict) or spec.get("status") not in FAULT_CODES:
            raise bad_request("status must be 429 or 503", "BadRequest")
        path = spec.get("path") or ""
        try:
            regex: re.Pattern[str] | None = re.compile(path)
        except re.error:
            regex = None  # a plain substring with regex metacharacters, such as "$batch"
        times = spec.get("times")
        fault = Fault(
            id=next(self._ids),
            status=int(spec["status"]),
            retry_after=int(spec.get("retry_after", 1)),
            path=path,
            method=spec.get("method"),
            times=int(times) if times is not None else None,
            share=float(spec.get("share", 1.0)),
            rng=random.Random(spec.get("seed")),
            _regex=regex,
        )
        self._faults[fault.id] = fault
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def remove(self, fault_id: int) -> bool:
        return self._faults.pop(fault_id, None) is not None

    def list(self) -> list[dict[str, Any]]:
        return [f.describe() for f in self._faults.values()]

    def check(self, method: str, target: str) -> None:
        """Raise the first matching fault's error (before any state is touched)."""
        if not self._faults:
            return
        for fault in list(self._faults.values()):
            if not fault.matches(method, target):
                continue
            fault.hits += 1
            if fault.times is not None and fault.hits >= fault.times:
                del self._faults[fault.id]
            code, message = FAULT_CODES[fault.status]
            raise GraphError(fault.status, code, message, {"Retry-After": str(fault.retry_after)})


class RequestLog:
    """Every /v1.0 and /beta request as the server received it; a $batch is one entry."""

    def __init__(self, limit: int = 500_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._seq = itertools.count(1)

    def record(self, entry: dict[str, Any]) -> None:
        entry["seq"] = next(self._seq)
        self._entries.append(entry)

    def since(self, seq: int) -> list[dict[str, Any]]:
        return [e for e in self._entries if e["seq"] > seq]

    def clear(self) -> None:
        self._entries.clear()
