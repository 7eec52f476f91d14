"""Fixtures of the conversation core: the email channel's services and queues feed it."""
from tests.channels.conftest import services  # noqa: F401  (the same services and email queues)
