"""Activity timeouts and retry policies shared by the workflows (Temporal owns retries,
docs/architecture.md rule 4).

Every setting is bounded: an activity that can never succeed (one no worker registered, a request
no retry can send) fails its workflow step instead of retrying for ever, and even a retryable
outage ends in a failure an operator sees after a day.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

# Errors no retry can cure, should one escape the clients' own mapping (which fails such requests
# as non-retryable ApplicationErrors): a value that no header or URL can hold, and an activity this
# worker does not register (the SDK's "NotFoundError"; a deploy mistake, not an outage).
UNSENDABLE_ERROR_TYPES = [
    "UnicodeEncodeError",
    "UnicodeDecodeError",
    "LocalProtocolError",
    "NotFoundError",
]

# Provisioning calls retry until they succeed, fail for good (a non-retryable error type), or a day
# has passed (an outage that long needs an operator). Throttling errors carry the server's
# Retry-After as next_retry_delay, which overrides the backoff.
PROVISIONING: workflow.ActivityConfig = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(days=1),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=2),
        non_retryable_error_types=UNSENDABLE_ERROR_TYPES,
    ),
}

# What the policy file says (a local activity: the policy is loaded in the worker). A worker that
# cannot answer in a minute is broken, not busy.
POLICY_LOOKUP: workflow.LocalActivityConfig = {
    "start_to_close_timeout": timedelta(seconds=10),
    "schedule_to_close_timeout": timedelta(minutes=1),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        maximum_interval=timedelta(seconds=5),
        non_retryable_error_types=UNSENDABLE_ERROR_TYPES,
    ),
}

# A copy to the worker's own record (a local activity, at least once).
RECORD_LOCAL: workflow.LocalActivityConfig = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(days=1),
    "retry_policy": PROVISIONING["retry_policy"],
}

# An emergency step (an incident's cut-off): run in the workflow's own worker, without a round
# trip through the task queue per step; retried as provisioning is.
URGENT_LOCAL: workflow.LocalActivityConfig = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(days=1),
    "retry_policy": PROVISIONING["retry_policy"],
}

# A manager's own joiner may still be running: wait a while for them, then carry on without.
WAIT_FOR_MANAGER: workflow.ActivityConfig = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(minutes=15),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        backoff_coefficient=1.5,
        maximum_interval=timedelta(seconds=30),
        non_retryable_error_types=UNSENDABLE_ERROR_TYPES,
    ),
}

# Inventory reads of a whole directory: pages heartbeat, so a stuck read is noticed in a minute; a
# run that cannot read for half an hour gives up (the next scheduled sweep tries again).
INVENTORY: workflow.ActivityConfig = {
    "start_to_close_timeout": timedelta(minutes=10),
    "heartbeat_timeout": timedelta(minutes=1),
    "schedule_to_close_timeout": timedelta(minutes=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=2),
        non_retryable_error_types=UNSENDABLE_ERROR_TYPES,
    ),
}

# One directory's paged scan (the orphan sweep): pages heartbeat their cursor and tally, so an
# attempt that times out or crashes costs one page, not the directory; 100k accounts read in a few
# minutes, and a directory unreadable for two hours waits for the next scheduled sweep.
SWEEP_SCAN: workflow.ActivityConfig = {
    "start_to_close_timeout": timedelta(minutes=30),
    "heartbeat_timeout": timedelta(minutes=1),
    "schedule_to_close_timeout": timedelta(hours=2),
    "retry_policy": INVENTORY["retry_policy"],
}

# The sweep's disables: like provisioning, but bounded so one stubborn account cannot hold the
# run (and the schedule, which skips overlapping runs) for ever.
SWEEP_CHANGE: workflow.ActivityConfig = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(minutes=10),
    "retry_policy": PROVISIONING["retry_policy"],
}

# A courtesy notice (the leaver's manager may have left too): try for a few minutes, then carry on.
NOTICE: workflow.ActivityConfig = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(minutes=5),
    "retry_policy": PROVISIONING["retry_policy"],
}

# A review's snapshot and its batches' removals: long, paged, heartbeating work. A retry is safe:
# a snapshot reads its scope again but writes only items not yet recorded, and a removal batch
# skips what it already applied.
REVIEW_BULK: workflow.ActivityConfig = {
    "start_to_close_timeout": timedelta(minutes=30),
    "heartbeat_timeout": timedelta(minutes=1),
    "schedule_to_close_timeout": timedelta(days=1),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=2),
        non_retryable_error_types=UNSENDABLE_ERROR_TYPES,
    ),
}

# A review's record writes and reads (a stage's assignments, a batch's items, decisions): short,
# idempotent, retried like provisioning.
REVIEW_STEP: workflow.ActivityConfig = {
    "start_to_close_timeout": timedelta(minutes=5),
    "schedule_to_close_timeout": timedelta(days=1),
    "retry_policy": PROVISIONING["retry_policy"],
}
