"""Replying in the email console: files, send and resolve, colleagues' reply markers, canned placeholders,
reply targets, and resolving to a case's next step."""
import io
from datetime import timedelta

from sqlalchemy import select

from crm.channels import email as channel
from crm.conversations import service as conversations
from crm.extensions import db
from crm.channels.email.replying import fill_placeholders, mark_replying, others_replying, waiting_since
from crm.models import Case, Contact, Conversation, Message, ReplyMarker, utcnow
from tests.channels.mailbuilder import raw_email
from tests.conftest import csrf_from


def _enquiry(**kw):
    return channel.receive(raw_email(**kw), source="file")


def test_a_reply_carries_its_files_to_the_resident(agent_client, services, smtp_sink):
    result = _enquiry()
    url = f"/email/conversations/{result.conversation_id}"
    token = csrf_from(agent_client.get(url).get_data(as_text=True))
    response = agent_client.post(f"{url}/reply", data={
        "csrf_token": token, "body": "Here is the leaflet.",
        "attachments": [(io.BytesIO(b"%PDF-1.4 leaflet"), "..\\..\\leaflet.pdf", "application/pdf")]},
        content_type="multipart/form-data")
    assert response.status_code == 302
    [sent] = [m for m in smtp_sink.to("jane@example.org") if "leaflet" in m.get_body(("plain",)).get_content()]
    [part] = list(sent.iter_attachments())
    assert part.get_filename() == "leaflet.pdf" and part.get_content() == b"%PDF-1.4 leaflet"
    reply = db.session.scalar(select(Message).where(Message.conversation_id == result.conversation_id,
                                                    Message.author == "agent"))
    assert [a.filename for a in reply.attachments] == ["leaflet.pdf"]


def test_too_many_files_is_a_clear_4xx_and_nothing_is_sent(agent_client, services, smtp_sink):
    result = _enquiry()
    url = f"/email/conversations/{result.conversation_id}"
    token = csrf_from(agent_client.get(url).get_data(as_text=True))
    before = len(smtp_sink.messages)
    files = [(io.BytesIO(b"x"), f"f{i}.txt", "text/plain") for i in range(6)]
    response = agent_client.post(f"{url}/reply", data={"csrf_token": token, "body": "Files", "attachments": files},
                                 content_type="multipart/form-data")
    assert response.status_code == 422 and "Attach at most 5 files" in response.get_data(as_text=True)
    assert len(smtp_sink.messages) == before


def test_send_and_resolve_without_a_case_needs_an_outcome(agent_client, services, smtp_sink):
    result = _enquiry(subject="Library opening hours", body="When is Kendal library open?")
    conversation = db.session.get(Conversation, result.conversation_id)
    conversation.case_id = None
    db.session.commit()
    url = f"/email/conversations/{result.conversation_id}"
    token = csrf_from(agent_client.get(url).get_data(as_text=True))
    refused = agent_client.post(f"{url}/reply", data={"csrf_token": token, "body": "9 to 5", "and_resolve": "1"})
    assert refused.status_code == 400 and "Choose the outcome before you send and resolve" in refused.get_data(
        as_text=True)
    done = agent_client.post(f"{url}/reply", data={"csrf_token": token, "body": "9 to 5", "and_resolve": "1",
                                                   "outcome": "resolved_first_time"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Conversation, result.conversation_id).status == "resolved"


def test_a_colleagues_marker_warns_until_it_expires(agent_client, agent, make_user, services):
    result = _enquiry()
    conversation = db.session.get(Conversation, result.conversation_id)
    colleague = make_user("agent", name="Colin Colleague")
    mark_replying(conversation, colleague)
    db.session.commit()
    url = f"/email/conversations/{result.conversation_id}"
    assert "Colin Colleague is already replying" in agent_client.get(url).get_data(as_text=True)
    assert agent_client.get(f"{url}/replying").get_json()["others"] == ["Colin Colleague"]
    assert others_replying(conversation, colleague) == []  # nobody warns you about yourself
    db.session.scalar(select(ReplyMarker)).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert agent_client.get(f"{url}/replying").get_json()["others"] == []


def test_the_reply_endpoint_renews_and_clears_the_users_marker(agent_client, agent, services):
    result = _enquiry()
    url = f"/email/conversations/{result.conversation_id}"
    token = csrf_from(agent_client.get(url).get_data(as_text=True))
    assert agent_client.post(f"{url}/replying", data={"csrf_token": token}).status_code == 200
    assert db.session.scalar(select(ReplyMarker)).user_id == agent.id
    assert agent_client.post(f"{url}/replying", data={"csrf_token": token, "done": "1"}).status_code == 200
    assert db.session.scalar(select(ReplyMarker)) is None
    assert agent_client.post(f"{url}/replying", data={}).status_code == 400  # no CSRF token


def test_placeholders_are_filled_and_other_braces_stay():
    values = {"resident_name": "Jane", "case_reference": "CAS-000001", "agent_name": "Bea"}
    text = "Dear {resident_name}, about {case_reference} {unknown} {agent_name}"
    assert fill_placeholders(text, values) == "Dear Jane, about CAS-000001 {unknown} Bea"


def test_waiting_since_is_the_oldest_message_after_the_last_reply(agent, services):
    result = _enquiry()
    conversation = db.session.get(Conversation, result.conversation_id)
    assert waiting_since([conversation.id])[conversation.id] is not None
    conversations.reply(conversation, agent, "On it")
    db.session.commit()
    assert waiting_since([conversation.id]) == {}


def test_resolving_a_conversation_with_a_case_offers_the_cases_next_step(client, auth, make_user, services,
                                                                           smtp_sink):
    supervisor = make_user("supervisor", name="Sue Supervisor")
    auth.login(supervisor)
    result = _enquiry()
    url = f"/email/conversations/{result.conversation_id}"
    html = client.get(url).get_data(as_text=True)
    assert "Move it to In progress" in html and "Resolved at first contact" not in html
    token = csrf_from(html)
    case = db.session.scalar(select(Case).where(Case.reference == result.case_reference))
    case.status = "in_progress"
    db.session.commit()
    refused = client.post(f"{url}/resolve", data={"csrf_token": token, "outcome": "case_raised",
                                                  "case_status": "resolved"})
    assert refused.status_code == 400 and "Say how the case was resolved" in refused.get_data(as_text=True)
    done = client.post(f"{url}/resolve", data={"csrf_token": token, "outcome": "case_raised",
                                               "case_status": "resolved", "case_reason": "Filled on Tuesday"})
    assert done.status_code == 302
    db.session.expire_all()
    case = db.session.scalar(select(Case).where(Case.reference == result.case_reference))
    assert case.status == "resolved"
    outcomes = {c.outcome for c in db.session.scalars(select(Contact).where(
        Contact.conversation_id == result.conversation_id))}
    assert "resolved_first_time" not in outcomes
    assert any("Filled on Tuesday" in m.get_body(("plain",)).get_content() for m in smtp_sink.to("jane@example.org"))


def test_an_agent_cannot_move_a_case_through_the_resolve_form(agent_client, services):
    result = _enquiry()
    url = f"/email/conversations/{result.conversation_id}"
    token = csrf_from(agent_client.get(url).get_data(as_text=True))
    response = agent_client.post(f"{url}/resolve", data={"csrf_token": token, "outcome": "case_raised",
                                                          "case_status": "in_progress"})
    assert response.status_code == 400
    assert db.session.scalar(select(Case).where(Case.reference == result.case_reference)).status == "new"
