"""Activities of the incident response (resolving the person, suspending and restoring them)."""
