"""`tenure identity show`: what an operator reads about one person."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from cli.identity_cmd import _render
from domain.holdings import app_role, group
from domain.lifecycle.events import WorkerRecord
from domain.lifecycle.identity import (
    AccessItem,
    AppliedEvent,
    EventOutcome,
    HeldPackage,
    IdentityState,
    LifecycleStage,
)


def _shown(state: IdentityState) -> str:
    console = Console(record=True, width=160)
    _render(console, state, None)
    return console.export_text()


def test_show_lists_birthright_and_requested_packages() -> None:
    state = IdentityState(
        employee_id="E0008",
        stage=LifecycleStage.ACTIVE,
        worker=WorkerRecord(employee_id="E0008", given_name="Tomás", family_name="García"),
        access=[AccessItem(kind="graph_group", target="Finance", rule="finance")],
        packages=[
            HeldPackage(
                request_id="access-request-E0008-accounts-payable-1",
                package_id="accounts-payable",
                status="granted",
                until=datetime(2027, 5, 27, 9, 0, tzinfo=UTC),
            ),
            HeldPackage(
                request_id="access-request-E0008-production-db-read-2",
                package_id="production-db-read",
                status="pending",
            ),
        ],
    )
    text = _shown(state)
    assert "Finance" in text and "finance" in text
    assert "accounts-payable" in text and "granted" in text and "2027-05-27 09:00" in text
    assert "production-db-read" in text and "pending" in text


def test_show_without_packages_has_no_package_table() -> None:
    text = _shown(IdentityState(employee_id="E1", stage=LifecycleStage.ACTIVE))
    assert "Access packages" not in text


def test_values_from_hr_are_shown_as_text_not_markup() -> None:
    # Brackets are fine in names and event ids; rich must not read them as its markup.
    state = IdentityState(
        employee_id="E2",
        stage=LifecycleStage.ACTIVE,
        worker=WorkerRecord(
            employee_id="E2",
            given_name="[bold]Ada[/bold]",
            family_name="[/]",
            department="[red]Finance",
            attributes={"team [x]": "[/blue]"},
        ),
        history=[
            AppliedEvent(
                event_id="[/red]ev-1",
                type="hire",
                effective_at=datetime(2026, 12, 1, tzinfo=UTC),
                received_at=datetime(2026, 12, 1, tzinfo=UTC),
                outcome=EventOutcome.APPLIED,
                reason="[link=http://x]click[/link]",
            )
        ],
    )
    text = _shown(state)
    assert "[bold]Ada[/bold] [/]" in text and "[red]Finance" in text
    assert "team [x]=[/blue]" in text
    assert "[/red]ev-1" in text and "[link=http://x]click[/link]" in text


def test_show_names_every_grant_of_each_resource() -> None:
    # Finance comes by birthright and through a package: both are named on its line.
    state = IdentityState(
        employee_id="E0009",
        stage=LifecycleStage.ACTIVE,
        access=[AccessItem(kind="graph_group", target="Finance", rule="finance")],
        packages=[
            HeldPackage(
                request_id="access-request-E0009-finance-read-1",
                package_id="finance-read",
                status="granted",
                resources=[group("Finance"), app_role("ledger", "reader")],
            )
        ],
    )
    lines = _shown(state).splitlines()
    finance = next(line for line in lines if "group:Finance" in line)
    assert "birthright rule finance" in finance
    assert "package finance-read (access-request-E0009-finance-read-1)" in finance
    # The app account comes with the role the package grants.
    assert any("app:ledger " in line and "finance-read" in line for line in lines)
    assert any("app:ledger:reader" in line for line in lines)
