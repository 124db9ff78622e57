"""Every log line of these tests is checked for personal data and secrets (tests/log_leaks.py)."""

from tests.log_leaks import log_capture

__all__ = ["log_capture"]  # an autouse fixture: every test here runs under it
