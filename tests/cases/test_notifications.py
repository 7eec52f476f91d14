"""Notifications over real SMTP: residents get public updates; new owners hear of re-routed and assigned cases."""
import socket

import pytest

from crm.cases.service import add_note, assign_case, post_public_update, reroute_case
from crm.models import OutboundEmail
from tests import factories


@pytest.fixture
def services(app):
    highways = factories.service("highways", "Highways", email_address="highways@council.example")
    waste = factories.service("waste", "Waste", categories=(("fly_tipping", "Fly-tipping"),),
                              email_address="waste@council.example")
    return highways, waste


def test_a_public_update_is_emailed_to_the_resident(services, db, smtp_sink):
    case = factories.case(factories.customer("Jane Resident", email="jane@example.org"))
    post_public_update(case, "The crew will be there on Tuesday.")
    add_note(case, "Crew overbooked, do not tell the resident")
    db.session.commit()
    [message] = smtp_sink.to("jane@example.org")
    assert case.reference in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    assert "The crew will be there on Tuesday." in text and "overbooked" not in text
    assert db.session.query(OutboundEmail).filter_by(to_address="jane@example.org").count() == 1


def test_a_resident_without_an_email_is_not_emailed(services, db, smtp_sink):
    case = factories.case(factories.customer("Phone Only", phone="07700 900222"))
    post_public_update(case, "Done soon.")
    db.session.commit()
    assert smtp_sink.messages == [] and db.session.query(OutboundEmail).count() == 0


def test_nothing_is_sent_when_the_update_is_rolled_back(services, db, smtp_sink):
    case = factories.case(factories.customer("Jane", email="jane@example.org"))
    post_public_update(case, "Never mind.")
    db.session.rollback()
    assert smtp_sink.messages == []


def test_rerouting_tells_the_new_services_mailbox(services, db, smtp_sink):
    case = factories.case(factories.customer())
    reroute_case(case, "waste", reason="Rubbish, not a road defect")
    db.session.commit()
    [message] = smtp_sink.to("waste@council.example")
    assert message["Subject"].startswith(f"Case {case.reference} re-routed to you")
    assert f"/cases/{case.reference}" in message.get_content()
    assert smtp_sink.to("highways@council.example") == []


def test_assigning_tells_the_officer(services, db, smtp_sink, make_user):
    highways, _ = services
    officer = make_user("service_officer", service_id=highways.id, email="olive@council.example")
    case = factories.case(factories.customer())
    assign_case(case, officer)
    db.session.commit()
    [message] = smtp_sink.to("olive@council.example")
    assert f"Case {case.reference} assigned to you" in message["Subject"]


def test_a_mail_relay_that_is_down_does_not_undo_the_reroute(services, db, app):
    with socket.socket() as probe:  # a loopback port where nothing listens
        probe.bind(("127.0.0.1", 0))
        app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=probe.getsockname()[1])
    case = factories.case(factories.customer())
    reroute_case(case, "waste")
    db.session.commit()
    db.session.expire_all()
    assert case.service.code == "waste"


def test_a_resident_who_turned_off_email_updates_is_not_emailed(services, db, smtp_sink):
    from crm.customers.identity import add_identity
    from crm.models import ResidentAccount

    customer = factories.customer("Jane Resident", email="jane@example.org")
    portal = add_identity(customer, "portal", "jane@example.org", verified=True)  # a proved /account
    db.session.flush()
    db.session.add(ResidentAccount(email="jane@example.org", name="Jane Resident", identity_id=portal.id,
                                   email_updates=False, session_stamp="x" * 32))
    case = factories.case(customer)
    post_public_update(case, "The crew will be there on Tuesday.")
    db.session.commit()
    assert smtp_sink.messages == [] and db.session.query(OutboundEmail).count() == 0
    assert [e.body for e in case.events if e.public] == ["The crew will be there on Tuesday."]
