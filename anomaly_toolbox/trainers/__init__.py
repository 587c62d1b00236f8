"""Trainers: the shared base and one file per method (losses, train step, scoring)."""
