"""Access-review activities: the scope's inventory (Graph, SCIM, Tenure's own state), stage
assignments and reminders, and the removals."""
