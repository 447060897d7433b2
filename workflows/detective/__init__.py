"""Detective controls: the scheduled orphan sweep."""

from workflows.detective.orphan_sweep import OrphanSweepWorkflow

WORKFLOWS: list[type] = [OrphanSweepWorkflow]
