"""Detective controls: the scheduled orphan sweep, the PIM alert scan, and separation-of-duties
checks (a person after a move, everyone on a schedule) with their remediations."""

from workflows.detective.orphan_sweep import OrphanSweepWorkflow
from workflows.detective.pim_alerts import PimAlertScanWorkflow
from workflows.detective.sod_checks import SodCheckWorkflow, SodScanWorkflow
from workflows.detective.sod_remediation import SodRemediationWorkflow

WORKFLOWS: list[type] = [
    OrphanSweepWorkflow,
    PimAlertScanWorkflow,
    SodCheckWorkflow,
    SodScanWorkflow,
    SodRemediationWorkflow,
]
