"""Detective controls' activities: the orphan sweep's inventories and disables."""

from activities.detective.sweep import SweepActivities

ACTIVITY_CLASSES: list[type] = [SweepActivities]
