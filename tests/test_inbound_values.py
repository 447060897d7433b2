"""The inbound rules (`domain.inbound`): strict where values enter, lenient where Temporal's
histories are decoded; and the content digest that tells a repeated event from a reused id."""

from __future__ import annotations

import sqlite3
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from audit.store import AccessRecordStore, ReceivedHrEvent
from domain.inbound import (
    INBOUND,
    character_problem,
    clean_text,
    has_visible_character,
    parse_timestamp,
)
from domain.lifecycle.events import HrEvent, event_digest


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "hr-1",
        "type": "hire",
        "effective_at": "2026-12-01T09:00:00Z",
        "worker": {"employee_id": "E1", "given_name": "Ada", "family_name": "Lovelace"},
    }
    base.update(changes)
    return base


def test_timestamps_are_iso_strings_with_a_zone() -> None:
    assert parse_timestamp("2026-12-01T09:00:00Z") == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert parse_timestamp("2026-12-01T10:00:00+01:00").utcoffset() == timedelta(hours=1)
    for bad in (0, -1, 1796000000, 1.5, True, None, "1796000000", "2026-12-01", "", "soon"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)


def test_values_decoded_from_histories_are_taken_as_recorded() -> None:
    # An earlier release signalled this (a control character in a name, a timestamp sent as a
    # number): a running identity must still decode its own history.
    recorded = event(effective_at=0)
    recorded["worker"]["given_name"] = "Ad\x00a"
    decoded = HrEvent.model_validate(recorded)
    assert decoded.worker.given_name == "Ad\x00a"
    assert decoded.effective_at == datetime(1970, 1, 1, tzinfo=UTC)
    payload = pydantic_data_converter.payload_converter.to_payloads([decoded])
    [again] = pydantic_data_converter.payload_converter.from_payloads(payload, [HrEvent])
    assert again == decoded
    with pytest.raises(ValidationError):
        HrEvent.model_validate(recorded, context=INBOUND)


def test_identifiers_are_never_changed() -> None:
    with pytest.raises(ValidationError, match=r"U\+000A at position 5"):
        HrEvent.model_validate(
            event(worker={"employee_id": "E1234\n", "given_name": "A", "family_name": "B"}),
            context=INBOUND,
        )
    with pytest.raises(ValidationError, match="whitespace"):
        HrEvent.model_validate(event(event_id="hr-1 "), context=INBOUND)
    decomposed = "e\u0301v-1"
    kept = HrEvent.model_validate(event(event_id=decomposed), context=INBOUND)
    assert kept.event_id == decomposed  # an id is not normalised, even to NFC


def test_names_are_nfc_and_trimmed() -> None:
    taken = HrEvent.model_validate(
        event(worker={"employee_id": "E1", "given_name": " Zoe\u0301 ", "family_name": "Ünal"}),
        context=INBOUND,
    )
    assert taken.worker.given_name == "Zoé"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_either_refused_or_clean(text: str) -> None:
    try:
        cleaned = clean_text(text, max_length=64, name=True)
    except ValueError as err:
        assert str(err)  # a reason, never another exception
        return
    assert cleaned == unicodedata.normalize("NFC", cleaned) == cleaned.strip()
    assert character_problem(cleaned) is None and has_visible_character(cleaned)
    assert len(cleaned) <= 64


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(max_size=20))
def test_any_hire_is_valid_or_refused_naming_fields(name: str, event_id: str) -> None:
    try:
        HrEvent.model_validate(
            event(
                event_id=event_id,
                worker={"employee_id": "E1", "given_name": name, "family_name": "X"},
            ),
            context=INBOUND,
        )
    except ValidationError as err:
        assert {e["loc"][0] for e in err.errors()} <= {"event_id", "worker"}


def test_the_digest_ignores_spelling_but_not_content() -> None:
    first = HrEvent.model_validate(
        event(worker={**event()["worker"], "attributes": {"a": "1", "b": "2"}}), context=INBOUND
    )
    respelled = first.model_copy(
        update={
            "effective_at": first.effective_at.astimezone(timezone(timedelta(hours=-5))),
            "worker": first.worker.model_copy(update={"attributes": {"b": "2", "a": "1"}}),
        }
    )
    assert event_digest(respelled) == event_digest(first)
    other = first.model_copy(update={"worker": first.worker.model_copy(update={"job_title": "X"})})
    assert event_digest(other) != event_digest(first)
    later = first.model_copy(update={"effective_at": first.effective_at + timedelta(seconds=1)})
    assert event_digest(later) != event_digest(first)


# ---- the record binds event ids to content ------------------------------------------------------


def claim(event_id: str, digest: str, employee_id: str = "E1") -> ReceivedHrEvent:
    return ReceivedHrEvent(
        event_id=event_id,
        employee_id=employee_id,
        digest=digest,
        received_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
    )


def test_the_record_binds_ids_all_or_nothing(tmp_path: Path) -> None:
    store = AccessRecordStore(tmp_path / "record.db")
    assert store.claim_hr_events([claim("a", "1"), claim("b", "2")]) == []
    assert store.claim_hr_events([claim("a", "1")]) == []  # a repeat
    [conflict] = store.claim_hr_events([claim("c", "3"), claim("b", "other", "E2")])
    assert (conflict.event.event_id, conflict.first.digest, conflict.first.employee_id) == (
        "b",
        "2",
        "E1",
    )
    assert conflict.first.received_at == datetime(2026, 12, 1, 9, tzinfo=UTC)
    # "c" came in a refused batch: it is not bound, so other content under it is still new.
    assert store.claim_hr_events([claim("c", "4")]) == []


def test_a_version_1_record_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "record.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1)")
    store = AccessRecordStore(path)
    assert store.claim_hr_events([claim("a", "1")]) == []
    with sqlite3.connect(path) as conn:  # now kept by Alembic (audit/migrate.py)
        # Upgraded to the newest revision, whatever it is now (0002 added hr_events).
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (store.revision,)
        ]
    assert store.revision >= "0002"
