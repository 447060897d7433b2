"""The approval engine (engine.py), the host it runs in (host.py), and one stage's run (stage.py)."""

from workflows.approval.engine import ApprovalEngine
from workflows.approval.host import ApprovalHost, ApprovalResult

__all__ = ["ApprovalEngine", "ApprovalHost", "ApprovalResult"]
