"""Shared models and pure policy logic: no I/O, safe to import from workflows."""
