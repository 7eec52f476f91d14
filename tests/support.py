"""Helpers shared by fixtures: free loopback ports and a real SMTP sink's handler."""
import socket
import threading
from email import message_from_bytes, policy


def free_port() -> int:
    """Return a loopback port nobody is listening on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SinkHandler:
    """aiosmtpd handler collecting every message received; refuses recipients listed in `refuse`."""

    def __init__(self):
        self.messages = []
        self.refuse = set()
        self.received = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "message": message_from_bytes(envelope.content, policy=policy.default),
            "raw": envelope.content,
        })
        self.received.set()
        return "250 Message accepted"

    def to(self, address):
        """Return the parsed messages delivered to one address."""
        return [m["message"] for m in self.messages if address in m["rcpt_tos"]]
