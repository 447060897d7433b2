"""Access reviews: the campaign and its batches (their own task queue, ReviewContract.TASK_QUEUE)."""

from workflows.reviews.batch import ReviewBatchWorkflow
from workflows.reviews.campaign import ReviewCampaignWorkflow

WORKFLOWS: list[type] = [ReviewCampaignWorkflow, ReviewBatchWorkflow]
