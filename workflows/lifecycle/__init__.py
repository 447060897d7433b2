"""The lifecycle's workflows: the identity entity and its transitions."""

from workflows.lifecycle.identity import IdentityWorkflow
from workflows.lifecycle.joiner import JoinerWorkflow
from workflows.lifecycle.leaver import LeaverWorkflow, RetentionWorkflow
from workflows.lifecycle.mover import GraceRemovalWorkflow, MoverWorkflow

WORKFLOWS: list[type] = [
    IdentityWorkflow,
    JoinerWorkflow,
    LeaverWorkflow,
    RetentionWorkflow,
    MoverWorkflow,
    GraceRemovalWorkflow,
]
