"""Approvals as data, for any subject (an access request, a role activation, a review item).

stages: a stage's policy as the policy file writes it; tally: who may decide and what decisions add
up to; timeline: when reminders, escalations and the deadline come; subject: what the engine asks
of the thing being decided; contract: what the engine exchanges with hosts, activities and views.
Nothing here knows what an access request is.
"""
