"""Security incidents: the emergency revoke a SIEM or SOAR tool starts."""

from workflows.security.incident import IncidentWorkflow

WORKFLOWS: list[type] = [IncidentWorkflow]
