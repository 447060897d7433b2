"""PIM activities: the Graph calls that activate, deactivate and check privileged roles and keep
eligibilities (activities/pim/graph.py)."""
