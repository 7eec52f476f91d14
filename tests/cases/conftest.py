"""Fixtures of the cases area: a real SMTP server on loopback for the notifications."""
import socket
import threading
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller


class Inbox:
    """Every message the loopback SMTP server received."""

    def __init__(self):
        self.messages = []
        self.received = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"rcpt_tos": list(envelope.rcpt_tos),
                              "message": message_from_bytes(envelope.content, policy=policy.default)})
        self.received.set()
        return "250 Message accepted"

    def to(self, address):
        return [m["message"] for m in self.messages if address in m["rcpt_tos"]]


@pytest.fixture
def inbox(app):
    """A real SMTP server on 127.0.0.1 (a free port) that the app's outbound mail goes to."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    try:
        yield handler
    finally:
        controller.stop()
