"""Graph activities: every side effect looks up before it writes, so any retry is safe (docs/architecture.md, rule 3).

GraphActivities is one object composed of role mixins that share one GraphDirectory state:
graph_users (users), graph_groups (memberships, members), graph_mail (mail, TAPs), over
graph_directory (client, lookups, caches, $batch) and graph_odata (pure helpers).
"""

from __future__ import annotations

from activities.graph.groups import GraphGroups
from activities.graph.mail import GraphMail
from activities.graph.users import GraphUsers


class GraphActivities(GraphUsers, GraphGroups, GraphMail):
    """Graph side effects for the identity workflows; the client is injected by the worker."""
