"""Fixtures of the email channel (the SMTP sink itself is in tests/conftest.py)."""
import socket

import pytest

from tests import factories


@pytest.fixture
def no_smtp(app):
    """Point outbound mail at a loopback port where nothing listens (every send fails).

    The port stays bound (but not listening) for the whole test, so no other process can
    take it and accept the mail in the meantime: connections are refused for certain.
    """
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=reserved.getsockname()[1])
        yield


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
