"""Email of a sensitive service (adult social care) is read only by those who need it, and every read is audited."""
import pytest
from sqlalchemy import select

from crm.channels import email as channel
from crm.extensions import db
from crm.models import AuditLog, Conversation, Queue
from tests import factories
from tests.channels.mailbuilder import raw_email


@pytest.fixture
def care(app, services):
    """Adult social care: sensitive, with its own address and email queue."""
    service = factories.service("adult_social_care", "Adult Social Care", categories=(("care_assessment", "Care"),),
                                email_address="care@council.example", sensitive=True)
    db.session.add(Queue(code="care_email", name="Care email", channel="email", service_id=service.id))
    db.session.commit()
    return service


@pytest.fixture
def care_email(care):
    result = channel.receive(raw_email(to="care@council.example", subject="My mother needs help at home",
                                       body="She fell twice this week."), source="smtp")
    assert result.case_reference
    return db.session.get(Conversation, result.conversation_id)


def sensitive_reads():
    return db.session.scalars(select(AuditLog).where(AuditLog.action == "conversation.view_sensitive")).all()


def test_an_agent_can_neither_list_nor_open_nor_fetch_a_sensitive_conversation(agent_client, care_email,
                                                                               agent, api_token):
    ordinary = channel.receive(raw_email(subject="Pothole"), source="smtp")
    inbox = agent_client.get("/email/").get_data(as_text=True)
    assert "Pothole" in inbox and "My mother needs help" not in inbox
    assert agent_client.get(f"/email/conversations/{care_email.id}").status_code == 403
    assert agent_client.get(f"/email/conversations/{ordinary.conversation_id}").status_code == 200
    response = agent_client.get(f"/api/v1/conversations/{care_email.id}", headers=api_token(agent))
    assert response.status_code == 403 and response.get_json()["error"]
    reply = agent_client.post(f"/api/v1/conversations/{care_email.id}/reply", json={"body": "Hello"},
                              headers=api_token(agent))
    assert reply.status_code == 403
    assert sensitive_reads() == []


def test_supervisors_and_the_services_officers_read_it_and_each_read_is_audited(client, auth, make_user, care,
                                                                              care_email, api_token):
    supervisor = make_user("supervisor", email="sue@test.example")
    officer = make_user("service_officer", email="ruth@test.example", service_id=care.id)
    other_officer = make_user("service_officer", email="hugh@test.example",
                              service_id=db.session.scalar(select(Queue.service_id).where(
                                  Queue.code == "highways_email")))
    auth.login(supervisor)
    page = client.get(f"/email/conversations/{care_email.id}")
    assert page.status_code == 200 and "She fell twice" in page.get_data(as_text=True)
    assert "My mother needs help" in client.get("/email/").get_data(as_text=True)
    assert client.get(f"/api/v1/conversations/{care_email.id}", headers=api_token(officer)).status_code == 200
    assert client.get(f"/api/v1/conversations/{care_email.id}", headers=api_token(other_officer)).status_code == 403
    assert [(r.actor_id, r.target_id) for r in sensitive_reads()] == [(supervisor.id, str(care_email.id)),
                                                                      (officer.id, str(care_email.id))]


def test_assigning_a_sensitive_conversation_gives_that_agent_the_need_to_know(agent_client, agent, care_email):
    care_email.assignee_id = agent.id
    care_email.status = "assigned"
    db.session.commit()
    assert "My mother needs help" in agent_client.get("/email/?view=mine").get_data(as_text=True)
    assert agent_client.get(f"/email/conversations/{care_email.id}").status_code == 200
    assert len(sensitive_reads()) == 1


def test_attachments_of_a_sensitive_email_are_refused_to_an_agent(agent_client, care):
    raw = raw_email(to="care@council.example", subject="Care plan", body="Attached.")
    result = channel.receive(raw.replace(b"Content-Type: text/plain; charset=utf-8\r\n", (
        b'Content-Type: multipart/mixed; boundary="b"\r\n')).replace(b"\r\n\r\nAttached.\r\n", (
        b'\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n--b\r\nContent-Type: application/pdf\r\n'
        b'Content-Disposition: attachment; filename="plan.pdf"\r\n\r\n%PDF-1.4 care plan\r\n--b--\r\n')),
        source="smtp")
    conversation = db.session.get(Conversation, result.conversation_id)
    [attachment] = [a for m in conversation.messages for a in m.attachments]
    assert agent_client.get(f"/email/attachments/{attachment.id}").status_code == 403
