"""Access requests: approval, grant, expiry, extension, revoke."""

from workflows.access.request import AccessRequestWorkflow

WORKFLOWS: list[type] = [AccessRequestWorkflow]
