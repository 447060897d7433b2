"""Privileged access: just-in-time role activations and the eligibilities they rest on."""

from workflows.pim.activation import PimActivationWorkflow
from workflows.pim.eligibility import PimEligibilityWorkflow

WORKFLOWS: list[type] = [PimActivationWorkflow, PimEligibilityWorkflow]
