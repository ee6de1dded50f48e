"""Fakes of the outside world that tests talk to over real sockets."""

from tests.fakes.messages_api import FakeMessagesAPI, RecordedRequest

__all__ = ["FakeMessagesAPI", "RecordedRequest"]
