"""Turning trained agents into economics: play, metrics against theory, reports."""
