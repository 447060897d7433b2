"""Stands in for an access request: waits to be told its beneficiary left, and says with which
event (tests/test_identity_leave_state.py)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.access.request import AccessRequestContract, BeneficiaryLeft


@workflow.defn(name="LeftListener")
class LeftListener:
    def __init__(self) -> None:
        self._left: BeneficiaryLeft | None = None

    @workflow.signal(name=AccessRequestContract.SIGNAL_BENEFICIARY_LEFT)
    def beneficiary_left(self, left: BeneficiaryLeft) -> None:
        self._left = left

    @workflow.run
    async def run(self) -> BeneficiaryLeft:
        await workflow.wait_condition(lambda: self._left is not None)
        assert self._left is not None
        return self._left
