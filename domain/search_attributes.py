"""Search attributes Tenure writes (Keyword; no PII, DESIGN.md rule 7). The local stack registers them."""

from temporalio.common import SearchAttributeKey

EMPLOYEE_ID = SearchAttributeKey.for_keyword("EmployeeId")
LIFECYCLE_STAGE = SearchAttributeKey.for_keyword("LifecycleStage")
TRANSITION_TYPE = SearchAttributeKey.for_keyword("TransitionType")

ALL = (EMPLOYEE_ID, LIFECYCLE_STAGE, TRANSITION_TYPE)
