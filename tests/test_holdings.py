"""The holdings ledger's rules as plain functions: a resource goes only with its last grant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.holdings import (
    Grant,
    GrantKind,
    GrantRef,
    app_account,
    app_role,
    group,
    holdings,
    release,
)
from domain.lifecycle.identity import AccessItem, HeldPackage, IdentityState, ReleaseAccessInput
from domain.lifecycle.ledger import (
    RELEASE_HOLD,
    identity_holdings,
    release_hold_until,
    release_package,
    remember_app_accounts,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BIRTHRIGHT = GrantRef(kind=GrantKind.BIRTHRIGHT, id="finance", label="finance")
PACKAGE_A = GrantRef(kind=GrantKind.PACKAGE, id="req-a", label="audit")
PACKAGE_B = GrantRef(kind=GrantKind.PACKAGE, id="req-b", label="reporting")


def test_keys_are_the_names_the_record_has_always_used() -> None:
    assert group("Finance").key == "group:Finance"
    assert app_account("ledger").key == "app:ledger"
    assert app_role("ledger", "reader").key == "app:ledger:reader"
    assert app_role("ledger", "reader").account == app_account("ledger")


def test_holdings_name_every_grant_and_the_account_behind_a_role() -> None:
    held = holdings(
        [
            Grant(grant=BIRTHRIGHT, resources=[group("Finance")]),
            Grant(grant=PACKAGE_A, resources=[group("Finance"), app_role("ledger", "reader")]),
        ]
    )
    assert {h.resource.key: h.grants for h in held} == {
        "app:ledger": [PACKAGE_A],
        "app:ledger:reader": [PACKAGE_A],
        "group:Finance": [BIRTHRIGHT, PACKAGE_A],
    }


def test_ending_a_grant_keeps_what_another_grant_holds() -> None:
    grants = [
        Grant(grant=BIRTHRIGHT, resources=[group("Finance")]),
        Grant(grant=PACKAGE_A, resources=[group("Finance"), app_role("ledger", "reader")]),
        Grant(grant=PACKAGE_B, resources=[app_role("ledger", "reader"), group("Reports")]),
    ]
    ended = release(grants, PACKAGE_B)
    assert ended.remove == [group("Reports")]
    assert [(h.resource, h.grants) for h in ended.kept] == [
        (app_role("ledger", "reader"), [PACKAGE_A])
    ]
    # Once only the package holds them, they go.
    alone = release([grants[0], grants[1]], PACKAGE_A)
    assert alone.remove == [app_role("ledger", "reader")]
    assert [h.resource for h in alone.kept] == [group("Finance")]


def test_a_role_in_an_account_another_grant_holds_keeps_the_account() -> None:
    grants = [
        Grant(grant=BIRTHRIGHT, resources=[app_role("ledger", "clerk")]),
        Grant(grant=PACKAGE_A, resources=[app_account("ledger"), app_role("ledger", "reader")]),
    ]
    ended = release(grants, PACKAGE_A)
    assert ended.remove == [app_role("ledger", "reader")]
    assert [h.resource for h in ended.kept] == [app_account("ledger")]


def test_ending_an_unknown_grant_removes_nothing() -> None:
    assert release([Grant(grant=BIRTHRIGHT, resources=[group("X")])], PACKAGE_A).remove == []


def test_an_identity_releases_a_package_once_and_answers_a_retry_the_same() -> None:
    state = IdentityState(
        employee_id="E1",
        graph_user_id="u-1",
        access=[AccessItem(kind="graph_group", target="Finance", rule="finance")],
        packages=[
            HeldPackage(
                request_id="req-a",
                package_id="audit",
                status="granted",
                resources=[group("Finance"), group("Audit")],
            )
        ],
    )
    ask = ReleaseAccessInput(request_id="req-a", resources=[group("Finance"), group("Audit")])
    first = release_package(state, ask, NOW)
    assert first.remove == [group("Audit")]
    assert [h.resource for h in first.kept] == [group("Finance")]
    assert state.packages[0].status == "releasing"  # counts for nothing any more
    assert [h.resource.key for h in identity_holdings(state)] == ["group:Finance"]
    assert release_package(state, ask, NOW + timedelta(minutes=1)) == first
    # Transitions wait for the removal a while, counted from the first answer.
    assert state.packages[0].releasing_since == NOW
    assert release_hold_until(state, NOW + timedelta(minutes=1)) == NOW + RELEASE_HOLD
    assert release_hold_until(state, NOW + RELEASE_HOLD) is None


def test_a_package_registered_by_an_earlier_release_still_counts() -> None:
    # Earlier releases kept group names and app names only.
    state = IdentityState(
        employee_id="E2",
        packages=[
            HeldPackage(
                request_id="req-old", package_id="old", status="granted", groups=["G"], apps=["a"]
            )
        ],
    )
    assert [h.resource.key for h in identity_holdings(state)] == ["app:a", "group:G"]


def test_an_account_a_grant_made_is_remembered_after_the_grant_ends() -> None:
    # Birthright gave the ledger app; a move then took it away (deactivated, not deleted).
    state = IdentityState(
        employee_id="E3",
        access=[AccessItem(kind="scim_app", target="ledger", rule="finance", roles=["clerk"])],
    )
    remember_app_accounts(state)
    state.access = []
    remember_app_accounts(state)
    assert state.app_accounts == ["ledger"]  # retention deletes it
