"""The holdings ledger on the time-skipping server: ending one grant never takes away what
another grant of the same person still gives, whichever path ends it (revoke, expiry, a move,
a leave), and retention deletes every account Tenure made, whatever granted it.

Requesters E19..E26 are this module's own (tests/access_request/conftest.py)."""

from __future__ import annotations

from datetime import timedelta

from domain.access.request import AccessRequestContract, Actor, RequestStatus, RevokeInput
from domain.holdings import GrantKind
from domain.lifecycle.identity import IdentityState, LifecycleStage
from domain.provisioning import ActivityNames
from tests.support.access import DAY, MINUTE, AccessHarness, kinds, until_status
from tests.support.lifecycle import details, until


def grants_of(state: IdentityState, key: str) -> set[tuple[GrantKind, str]]:
    """Who holds `key` for this person, as the identity's ledger says (`tenure identity show`)."""
    return {
        (g.kind, g.label or g.id) for h in state.holdings if h.resource.key == key for g in h.grants
    }


async def revoke(org: AccessHarness, handle, reason: str = "no longer needed") -> None:
    await org.update(
        handle,
        AccessRequestContract.UPDATE_REVOKE,
        RevokeInput(actor=Actor(employee_id="ADMIN"), reason=reason),
    )


async def test_revoking_a_package_keeps_a_group_birthright_also_grants(org: AccessHarness) -> None:
    # Finance people get Ledger Readers by birthright (rule `finance`); E19 asks for it too.
    handle = await org.request("ledger-read", "E19")
    await until_status(handle, RequestStatus.GRANTED)
    both = await until(
        org.identities["E19"],
        lambda s: len(grants_of(s, "group:Ledger Readers")) == 2,
        "ledger lists both grants",
    )
    assert grants_of(both, "group:Ledger Readers") == {
        (GrantKind.BIRTHRIGHT, "finance"),
        (GrantKind.PACKAGE, "ledger-read"),
    }

    await revoke(org, handle)
    revoked = await until_status(handle, RequestStatus.REVOKED)
    assert ("Ledger Readers", "E19") in org.directory.memberships
    removed = kinds(revoked, "removed")[0]
    assert removed.data["resources"] == []
    assert removed.data["kept"] == [
        {"resource": "group:Ledger Readers", "held_by": ["birthright rule finance"]}
    ]
    assert "still granted by something else" in removed.text
    after = await until(
        org.identities["E19"], lambda s: not s.packages, "the identity forgets the package"
    )
    assert grants_of(after, "group:Ledger Readers") == {(GrantKind.BIRTHRIGHT, "finance")}
    # The record shows no removal of the group by the request.
    changes = [
        c
        for c in org.store.iter_access_changes()
        if c.employee_id == "E19" and c.resource == "group:Ledger Readers"
    ]
    assert [c.action for c in changes if c.cause.get("type") == "access_request"] == ["granted"]


async def test_expiry_of_a_package_keeps_a_group_birthright_also_grants(org: AccessHarness) -> None:
    handle = await org.request("ledger-read-month", "E20")
    granted = await until_status(handle, RequestStatus.GRANTED)
    assert granted.expires_at is not None
    await org.env.sleep(timedelta(days=30) + MINUTE)
    await until_status(handle, RequestStatus.EXPIRED)
    assert ("Ledger Readers", "E20") in org.directory.memberships


async def test_revoking_one_of_two_packages_that_share_a_role_keeps_the_role(
    org: AccessHarness,
) -> None:
    first = await org.request("ledger-reader-a", "E21")
    second = await org.request("ledger-reader-b", "E21")
    await until_status(first, RequestStatus.GRANTED)
    await until_status(second, RequestStatus.GRANTED)
    assert ("ledger", "E21", "reader") in org.directory.app_roles

    await revoke(org, first)
    await until_status(first, RequestStatus.REVOKED)
    assert ("ledger", "E21", "reader") in org.directory.app_roles
    state = await until(org.identities["E21"], lambda s: len(s.packages) == 1, "one package left")
    assert grants_of(state, "app:ledger:reader") == {(GrantKind.PACKAGE, "ledger-reader-b")}

    # The last grant of the role ends: now it goes (the group only b granted goes with it).
    await revoke(org, second)
    gone = await until_status(second, RequestStatus.REVOKED)
    assert ("ledger", "E21", "reader") not in org.directory.app_roles
    assert ("Reports", "E21") not in org.directory.memberships
    assert sorted(kinds(gone, "removed")[0].data["resources"]) == [
        "app:ledger:reader",
        "group:Reports",
    ]


async def test_a_move_away_from_birthright_keeps_a_role_a_package_grants(
    org: AccessHarness,
) -> None:
    # E22 holds the reader role through a package and Ledger Readers by birthright and package.
    role = await org.request("ledger-reader-a", "E22")
    group = await org.request("ledger-read", "E22")
    await until_status(role, RequestStatus.GRANTED)
    await until_status(group, RequestStatus.GRANTED)
    await org.move("E22", "Sales")
    moved = await until(
        org.identities["E22"],
        lambda s: s.worker is not None and s.worker.department == "Sales",
        "moved to Sales",
    )
    assert grants_of(moved, "group:Ledger Readers") == {(GrantKind.PACKAGE, "ledger-read")}
    assert ("Ledger Readers", "E22") in org.directory.memberships
    assert ("ledger", "E22", "reader") in org.directory.app_roles


async def test_retention_deletes_an_app_account_only_a_package_made(org: AccessHarness) -> None:
    # No birthright rule grants the ledger app: E23's account exists because of the package.
    handle = await org.request("ledger-reader-a", "E23")
    await until_status(handle, RequestStatus.GRANTED)
    await org.terminate("E23")
    await until_status(handle, RequestStatus.REVOKED)
    left = await until(
        org.identities["E23"], lambda s: s.stage is LifecycleStage.DISABLED, "disabled"
    )
    assert left.app_accounts == ["ledger"]
    assert left.retention_due_at is not None
    await org.env.sleep(left.retention_due_at - await org.env.get_current_time() + DAY)
    deleted = await until(
        org.identities["E23"], lambda s: s.stage is LifecycleStage.DELETED, "deleted"
    )
    assert deleted.app_accounts == []
    deletes = [c.input for c in org.directory.calls_named(ActivityNames.SCIM_DELETE_USER)]
    assert any(d.app == "ledger" and d.external_id == "E23" for d in deletes)
    assert await details(org.identities["E23"]) == deleted
