"""Movers as pure policy: what changed, how access follows, grace periods in the policy file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.lifecycle.birthright import joiner_plan, mover_plan
from domain.lifecycle.events import EmploymentType, WorkerRecord
from domain.lifecycle.identity import AccessItem, PendingRemoval
from domain.lifecycle.mover import access_delta, changed_fields, is_move, merged_record
from domain.policy.model import BirthrightRule, Policy

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)


def _worker(**fields: object) -> WorkerRecord:
    base: dict[str, object] = {
        "employee_id": "M1",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "department": "Finance",
        "manager_id": "E0001",
    }
    return WorkerRecord.model_validate(base | fields)


def _held(policy: Policy, worker: WorkerRecord) -> list[AccessItem]:
    plan = joiner_plan(policy, worker)
    return [AccessItem(kind="graph_group", target=g.group, rule=g.rule) for g in plan.groups] + [
        AccessItem(kind="scim_app", target=a.app, rule=a.rule, roles=a.roles) for a in plan.apps
    ]


def _with_grace(policy: Policy, rule: str, grace: object) -> Policy:
    raw = policy.model_dump()
    for r in raw["birthright"]:
        if r["name"] == rule:
            r["remove_after"] = grace
    return Policy.model_validate(raw)


def test_changed_fields_lists_each_difference() -> None:
    old = _worker(attributes={"on_call": "no", "grade": "7"})
    new = _worker(
        department="Sales",
        employment_type=EmploymentType.CONTRACTOR,
        attributes={"on_call": "yes", "badge": "B1"},
    )
    changes = [(c.field, c.old, c.new) for c in changed_fields(old, new)]
    assert changes == [
        ("department", "Finance", "Sales"),
        ("employment_type", "employee", "contractor"),
        ("attributes.badge", "(none)", "B1"),
        ("attributes.grade", "7", "(none)"),
        ("attributes.on_call", "no", "yes"),
    ]
    assert is_move(changed_fields(old, new))
    assert changed_fields(old, old) == []


def test_a_change_of_name_is_an_update_but_not_a_move() -> None:
    changes = changed_fields(_worker(), _worker(family_name="King"))
    assert [c.field for c in changes] == ["family_name"] and not is_move(changes)


def test_an_update_without_names_keeps_the_stored_names() -> None:
    merged = merged_record(_worker(), WorkerRecord(employee_id="M1", department="Sales"))
    assert (merged.given_name, merged.family_name, merged.department) == (
        "Ada",
        "Lovelace",
        "Sales",
    )
    assert merged.manager_id is None  # the rest is the full current record


def test_without_grace_old_access_goes_at_once_and_new_access_is_added(
    demo_policy: Policy,
) -> None:
    old, new = _worker(), _worker(department="Sales", location="Berlin")
    plan = mover_plan(demo_policy, new)
    delta = access_delta(
        _held(demo_policy, old), [], plan.groups, plan.apps, plan.remove_after, "ev", NOW
    )
    assert set(delta.add_groups) == {"Sales", "Berlin Office"}
    assert delta.remove_groups_now == ["Finance"]
    assert delta.deactivate_apps_now == ["ledger"]
    assert [a.app for a in delta.apps] == ["collab"]
    assert delta.deferred == [] and delta.cancelled == []
    # The access after the move is a joiner's with the new attributes.
    assert delta.access == _held(demo_policy, new)


def test_grace_period_defers_removal_and_a_second_move_keeps_its_date(demo_policy: Policy) -> None:
    policy = _with_grace(demo_policy, "finance", "14d")
    old, new = _worker(), _worker(department="Engineering")
    plan = mover_plan(policy, new)
    assert plan.remove_after == {"finance": timedelta(days=14)}
    held = _held(policy, old)
    delta = access_delta(held, [], plan.groups, plan.apps, plan.remove_after, "ev1", NOW)
    assert delta.remove_groups_now == [] and delta.deactivate_apps_now == []
    due = NOW + timedelta(days=14)
    assert {(p.kind, p.target, p.due_at, p.event_id) for p in delta.deferred} == {
        ("graph_group", "Finance", due, "ev1"),
        ("scim_app", "ledger", due, "ev1"),
    }
    assert {a.target for a in delta.access} == {"All Staff", "All Employees", "Engineering"} | {
        "collab",
        "Finance",
        "ledger",
    }

    # Later, a move to Sales: Engineering goes at once; Finance keeps its original date.
    later = NOW + timedelta(days=3)
    sales = mover_plan(policy, _worker(department="Sales"))
    again = access_delta(
        delta.access, delta.deferred, sales.groups, sales.apps, sales.remove_after, "ev2", later
    )
    assert again.remove_groups_now == ["Engineering"] and again.deferred == []
    assert {a.target for a in again.access} >= {"Finance", "ledger", "Sales"}


def test_a_move_back_cancels_the_pending_removal(demo_policy: Policy) -> None:
    policy = _with_grace(demo_policy, "finance", 14)
    held = _held(policy, _worker())
    eng = mover_plan(policy, _worker(department="Engineering"))
    away = access_delta(held, [], eng.groups, eng.apps, eng.remove_after, "ev1", NOW)
    fin = mover_plan(policy, _worker())
    back = access_delta(
        away.access, away.deferred, fin.groups, fin.apps, fin.remove_after, "ev2", NOW
    )
    assert {p.target for p in back.cancelled} == {"Finance", "ledger"}
    assert back.remove_groups_now == ["Engineering"] and back.deferred == []
    assert back.add_groups == [] and back.access == held


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (14, timedelta(days=14)),
        ("14d", timedelta(days=14)),
        ("36h", timedelta(hours=36)),
        ("P14D", timedelta(days=14)),
        ("PT12H", timedelta(hours=12)),
        (None, None),
    ],
)
def test_remove_after_accepts_days_intervals_and_iso_durations(
    value: object, expected: timedelta | None
) -> None:
    rule = BirthrightRule.model_validate({"name": "r", "groups": ["G"], "remove_after": value})
    assert rule.remove_after == expected


@pytest.mark.parametrize("value", [0, -3, "0d", "fortnight", "P400D", True])
def test_remove_after_rejects_nonsense(value: object) -> None:
    with pytest.raises(ValidationError, match="remove_after"):
        BirthrightRule.model_validate({"name": "r", "groups": ["G"], "remove_after": value})


def test_pending_removal_round_trips() -> None:
    p = PendingRemoval(kind="scim_app", target="ledger", rule="finance", due_at=NOW, event_id="e")
    assert PendingRemoval.model_validate_json(p.model_dump_json()) == p
