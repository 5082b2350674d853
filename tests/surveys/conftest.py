"""Fixtures of the surveys tests: the loopback SMTP and Notify servers of the outreach tests."""

from tests.surveys.outreach_support import notify, smtp

__all__ = ["notify", "smtp"]
