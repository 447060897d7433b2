"""Search attributes Tenure writes (Keyword; no PII, DESIGN.md rule 7). The local stack registers them."""

from temporalio.common import SearchAttributeKey

EMPLOYEE_ID = SearchAttributeKey.for_keyword("EmployeeId")
LIFECYCLE_STAGE = SearchAttributeKey.for_keyword("LifecycleStage")
TRANSITION_TYPE = SearchAttributeKey.for_keyword("TransitionType")

# Access requests: which package, and where the request stands (RequestStatus values).
ACCESS_PACKAGE = SearchAttributeKey.for_keyword("AccessPackage")
REQUEST_STATUS = SearchAttributeKey.for_keyword("RequestStatus")

ALL = (EMPLOYEE_ID, LIFECYCLE_STAGE, TRANSITION_TYPE, ACCESS_PACKAGE, REQUEST_STATUS)
