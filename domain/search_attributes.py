"""Search attributes Tenure writes (Keyword; no PII, docs/architecture.md rule 7).

`tenure temporal setup` registers every key in ALL, with its type, on a namespace
(connection/search_attributes_setup.py); the local stack and the tests' dev server call the same
code, so a key added here is registered everywhere by the next run.
"""

from temporalio.common import SearchAttributeKey

EMPLOYEE_ID = SearchAttributeKey.for_keyword("EmployeeId")
LIFECYCLE_STAGE = SearchAttributeKey.for_keyword("LifecycleStage")
TRANSITION_TYPE = SearchAttributeKey.for_keyword("TransitionType")

# Access requests: which package, and where the request stands (RequestStatus values).
ACCESS_PACKAGE = SearchAttributeKey.for_keyword("AccessPackage")
REQUEST_STATUS = SearchAttributeKey.for_keyword("RequestStatus")

# Access reviews: which review a campaign runs, and its phase (domain.reviews.campaign.Phase).
REVIEW_ID = SearchAttributeKey.for_keyword("ReviewId")
CAMPAIGN_PHASE = SearchAttributeKey.for_keyword("CampaignPhase")

ALL = (
    EMPLOYEE_ID,
    LIFECYCLE_STAGE,
    TRANSITION_TYPE,
    ACCESS_PACKAGE,
    REQUEST_STATUS,
    REVIEW_ID,
    CAMPAIGN_PHASE,
)
