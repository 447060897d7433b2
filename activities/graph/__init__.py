"""Microsoft Graph: the client, its error mapping, and the Graph activities."""

from activities.graph.activities import GraphActivities

ACTIVITY_CLASSES: list[type] = [GraphActivities]
