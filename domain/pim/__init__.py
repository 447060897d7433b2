"""Privileged access (PIM): roles people may activate just in time, their settings, and the pure
rules that say whether an activation may go ahead."""
