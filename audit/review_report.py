"""A campaign's report as text, streamed a line at a time (`AccessRecordStore.iter_report` rows).

CSV: a header of ReportRow's field names, then one record per row; times are ISO 8601 UTC, and
`stages` is compact text, "1:approved by E1; 2:denied by rule: ...". JSONL: one
`ReportRow.model_dump_json()` object per line, with every stage's decision in full.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from operator import attrgetter

from domain.reviews.items import ReportRow, StageDecision

FIELDS: list[str] = list(ReportRow.model_fields)
# Every other field is text already: only these two are rendered (100,000 rows a report).
_VALUES = attrgetter(*FIELDS)
_APPLIED_AT = FIELDS.index("applied_at")
_STAGES = FIELDS.index("stages")


def report_csv(rows: Iterable[ReportRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: list[str]) -> str:
        writer.writerow(values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(FIELDS)
    for row in rows:
        values = list(_VALUES(row))
        values[_APPLIED_AT] = "" if row.applied_at is None else row.applied_at.isoformat()
        values[_STAGES] = stages_text(row.stages)
        yield line(values)


def report_jsonl(rows: Iterable[ReportRow]) -> Iterator[str]:
    for row in rows:
        yield row.model_dump_json() + "\n"


def stages_text(stages: list[StageDecision]) -> str:
    return "; ".join(f"{n}:{d.outcome.value} by {d.decided_by}" for n, d in enumerate(stages, 1))
