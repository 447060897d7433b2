"""HR intake benchmark (`make bench-intake`): what the inbound checks and the event-id record cost.

In one run, on one Temporal dev server (no worker: a 202 needs only Temporal):
1. parsing and validating one 1,000-event body (the inbound rules: strict timestamps, NFC names,
   character checks), against plain pydantic validation of the same events without them;
2. binding 1,000 fresh event ids in the record (one SQLite transaction);
3. events/s through the API (batches of 500 over HTTP, uvicorn with its limits), with the record
   (synchronous refusal of reused ids) and without it.
Ratios are measured in this one run. Figures are printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from api.app import create_app
from api.intake import parse_intake
from api.settings import ApiSettings
from audit.store import AccessRecordStore, ReceivedHrEvent
from domain.lifecycle.events import HrEvent, event_digest
from tests.support.asgi_server import serving
from tests.support.temporal_dev import temporal_dev_server

RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "bench-intake"


def events(count: int, run: str) -> list[dict[str, Any]]:
    names = ["Zoë", "Ada", "Анна", "李", "مريم", "Renée", "Jean-Luc", "Ἀθηνᾶ"]
    return [
        {
            "event_id": f"bench-{run}-{i}",
            "type": "hire",
            "effective_at": "2026-12-01T09:00:00Z",
            "occurred_at": "2026-11-20T15:04:05Z",
            "worker": {
                "employee_id": f"B{run}{i:05d}",
                "given_name": names[i % len(names)],
                "family_name": f"Person {i}",
                "department": "Finance",
                "job_title": "Analyst",
                "manager_id": "E0001",
                "location": "London",
                "attributes": {"cost centre": "CC-1"},
            },
        }
        for i in range(count)
    ]


def best_of(repeats: int, work: Any) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        timings.append(time.perf_counter() - start)
    return min(timings)


def measure_parsing() -> dict[str, float]:
    body = json.dumps({"events": events(1000, "p")}).encode()
    plain = json.loads(body)["events"]
    inbound = best_of(5, lambda: parse_intake(body))
    lenient = best_of(5, lambda: [HrEvent.model_validate(e) for e in plain])
    return {
        "parse_validate_1000_ms": round(inbound * 1000, 1),
        "lenient_validate_1000_ms": round(lenient * 1000, 1),
    }


def measure_claims(tmp: Path) -> dict[str, float]:
    store = AccessRecordStore(tmp / "claims.db")
    parsed = parse_intake(json.dumps({"events": events(1000, "c")}).encode()).events
    now = datetime.now(UTC)
    claims = [
        ReceivedHrEvent(e.event_id, e.worker.employee_id, event_digest(e), now) for e in parsed
    ]
    start = time.perf_counter()
    assert store.claim_hr_events(claims) == []
    fresh = time.perf_counter() - start
    repeat = best_of(3, lambda: store.claim_hr_events(claims))
    return {
        "claim_1000_new_ms": round(fresh * 1000, 1),
        "claim_1000_repeats_ms": round(repeat * 1000, 1),
    }


async def measure_api(total: int, batch: int, record: Path | None, env: Any) -> float:
    settings = ApiSettings(intake_token=TOKEN, access_record_db=record)
    run = uuid.uuid4().hex[:6].upper()
    bodies = [
        json.dumps({"events": events(total, run)[i : i + batch]}).encode()
        for i in range(0, total, batch)
    ]
    async with serving(create_app(settings, client=env.client)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            start = time.perf_counter()
            for body in bodies:
                response = await http.post(
                    "/v1/hr/events",
                    content=body,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                assert response.status_code == 202, response.text[:300]
            return total / (time.perf_counter() - start)


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000, help="events per API measurement")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="API rounds of each kind, alternated")
    args = parser.parse_args(argv)

    figures: dict[str, Any] = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    figures.update(measure_parsing())
    with tempfile.TemporaryDirectory(prefix="tenure-bench-intake-") as tmp:
        figures.update(measure_claims(Path(tmp)))
        async with temporal_dev_server() as env:
            with_record, without = [], []
            for round_ in range(args.rounds):
                record = Path(tmp) / f"record-{round_}.db"
                with_record.append(await measure_api(args.events, args.batch, record, env))
                without.append(await measure_api(args.events, args.batch, None, env))
    figures["api_events_per_s_with_record"] = round(statistics.median(with_record), 1)
    figures["api_events_per_s_without_record"] = round(statistics.median(without), 1)
    figures["ratio_with_to_without_record"] = round(
        figures["api_events_per_s_with_record"] / figures["api_events_per_s_without_record"], 3
    )
    figures["rounds"] = {"with_record": with_record, "without_record": without}
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"intake-{stamp}.json").write_text(json.dumps(figures, indent=2) + "\n")
    for key, value in figures.items():
        if key != "rounds":
            print(f"{key:40} {value}")
    return figures


if __name__ == "__main__":
    asyncio.run(main())
