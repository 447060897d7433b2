"""Access-request activities: reaching identity entities, approvers, notices."""

from activities.access.requests import AccessActivities

ACTIVITY_CLASSES: list[type] = [AccessActivities]
