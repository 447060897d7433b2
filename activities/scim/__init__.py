"""SCIM 2.0 target applications: the client and the SCIM activities."""

from activities.scim.activities import ScimActivities

ACTIVITY_CLASSES: list[type] = [ScimActivities]
