"""Helpers shared by test modules (launchers for local emulators)."""
