"""Fixtures of the email channel: a real SMTP sink on loopback, raw message builders."""
import socket
import threading
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from tests import factories


def free_port() -> int:
    """Return a loopback port nobody is listening on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SinkHandler:
    """Collect every message the sink receives; refuse recipients listed in `refuse`."""

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


@pytest.fixture
def smtp_sink(app):
    """A real SMTP server on 127.0.0.1 that the app's outbound mail goes to."""
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def no_smtp(app):
    """Point outbound mail at a loopback port where nothing listens (every send fails)."""
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port())


@pytest.fixture
def services(app):
    """Highways (with its own address and email queue) and a general service, as in the demo."""
    from crm.extensions import db
    from crm.models import Category, Queue, Service

    highways = factories.service("highways", "Highways", email_address="highways@council.example")
    general = factories.service("general", "General enquiries", categories=(("general_enquiry", "General"),))
    db.session.add_all([
        Queue(code="highways_email", name="Highways email", channel="email", service_id=highways.id),
        Queue(code="general_email", name="General email", channel="email", service_id=general.id),
    ])
    db.session.commit()
    return {"highways": highways, "general": general}
