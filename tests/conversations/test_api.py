"""The conversation API from outside: GET /api/v1/conversations/{id} and POST .../reply, for email and chat."""
from sqlalchemy import select

from crm.extensions import db
from crm.models import Conversation, Message
from crm.signals import message_stored
from tests import factories
from tests.channels.mailbuilder import raw_email

RFC822 = {"Content-Type": "message/rfc822"}


def post_email(client, raw, headers):
    return client.post("/api/v1/inbound/email", data=raw, headers={**RFC822, **headers})


def test_get_conversation_lists_messages_in_seq_order_with_attachments(client, services, agent_headers):
    raw = (b"From: jane@example.org\r\nTo: contact@council.example\r\nSubject: Photo\r\n"
           b"Message-ID: <att-1@example.org>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee photo\r\n"
           b"--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=hole.png\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n")
    conversation_id = post_email(client, raw, agent_headers).get_json()["conversation_id"]
    response = client.get(f"/api/v1/conversations/{conversation_id}", headers=agent_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["channel"] == "email" and body["case_reference"].startswith("CAS-")
    assert [m["seq"] for m in body["messages"]] == [1, 2]
    first = body["messages"][0]
    assert first["author"] == "resident" and first["body"] == "See photo"
    assert first["attachments"][0]["filename"] == "hole.png" and first["attachments"][0]["size"] == 8
    assert first["at"].endswith("+00:00")
    download = client.get(first["attachments"][0]["url"], headers=agent_headers)
    assert download.status_code == 200 and download.data == b"\x89PNG\r\n\x1a\n"
    assert client.get("/api/v1/conversations/999999", headers=agent_headers).status_code == 404
    assert client.get(f"/api/v1/conversations/{conversation_id}").status_code == 401


def test_reply_sends_over_smtp_with_the_thread_headers(client, services, agent_headers, smtp_sink):
    raw = raw_email(sender="jane@example.org", subject="Pothole", message_id="thread-1@example.org")
    conversation_id = post_email(client, raw, agent_headers).get_json()["conversation_id"]
    response = client.post(f"/api/v1/conversations/{conversation_id}/reply", json={"body": "We will fill it on Friday."},
                           headers=agent_headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["author"] == "agent"
    reply = smtp_sink.messages[-1]["message"]
    assert reply["To"].addresses[0].addr_spec == "jane@example.org"
    assert reply["In-Reply-To"] == "<thread-1@example.org>"
    assert "<thread-1@example.org>" in reply["References"]
    conversation = db.session.get(Conversation, conversation_id)
    assert conversation.case.reference in reply["Subject"] and reply["Subject"].startswith("Re: Pothole")
    assert reply["Message-ID"].endswith("@council.example>")
    assert "Friday" in reply.get_body(("plain",)).get_content()
    assert "Friday" in reply.get_body(("html",)).get_content()
    assert conversation.status == "waiting_customer"
    # The resident's answer to our reply threads back in.
    answer = raw_email(sender="jane@example.org", subject="thanks", in_reply_to=reply["Message-ID"].strip("<>"))
    assert post_email(client, answer, agent_headers).get_json()["status"] == "threaded"


def test_internal_notes_never_go_out(client, services, agent_headers, smtp_sink):
    conversation_id = post_email(client, raw_email(), agent_headers).get_json()["conversation_id"]
    sent = len(smtp_sink.messages)
    response = client.post(f"/api/v1/conversations/{conversation_id}/reply",
                           json={"body": "Resident is known to us", "internal": True}, headers=agent_headers)
    assert response.status_code == 201 and response.get_json()["internal"] is True
    assert len(smtp_sink.messages) == sent


def test_reply_bad_input_is_422_and_undeliverable_is_409(client, services, agent_headers, smtp_sink):
    conversation_id = post_email(client, raw_email(sender="jane@example.org"), agent_headers).get_json()["conversation_id"]
    for body in ({}, {"body": ""}, {"body": "x" * 20001}, {"body": "hi", "extra": 1}):
        response = client.post(f"/api/v1/conversations/{conversation_id}/reply", json=body, headers=agent_headers)
        assert response.status_code == 422, body
    conversation = db.session.get(Conversation, conversation_id)
    for identity in conversation.customer.identities:
        identity.undeliverable = True
    db.session.commit()
    response = client.post(f"/api/v1/conversations/{conversation_id}/reply", json={"body": "hi"}, headers=agent_headers)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "undeliverable"


def test_reply_to_a_chat_stores_the_message_and_signals_delivery(client, agent_headers, agent):
    customer = factories.customer("Chat Visitor")
    conversation = Conversation(customer_id=customer.id, channel="webchat", status="assigned", token="chat-token-123456",
                                last_seq=0, assignee_id=agent.id)
    db.session.add(conversation)
    db.session.commit()
    received = []

    def listener(sender, **payload):
        received.append(payload)

    message_stored.connect(listener)
    try:
        response = client.post(f"/api/v1/conversations/{conversation.id}/reply", json={"body": "Hello, how can I help?"},
                               headers=agent_headers)
    finally:
        message_stored.disconnect(listener)
    assert response.status_code == 201 and response.get_json()["seq"] == 1
    mine = [p for p in received if p.get("source") == "api"]
    assert mine and mine[0]["channel"] == "webchat" and mine[0]["author"] == "agent"
    stored = db.session.scalar(select(Message).where(Message.conversation_id == conversation.id))
    assert stored.body == "Hello, how can I help?" and stored.direction == "outbound"


def test_reply_to_an_ended_chat_is_409(client, agent_headers):
    customer = factories.customer("Chat Visitor")
    conversation = Conversation(customer_id=customer.id, channel="webchat", status="ended", token="chat-token-ended1",
                                last_seq=0)
    db.session.add(conversation)
    db.session.commit()
    response = client.post(f"/api/v1/conversations/{conversation.id}/reply", json={"body": "hello?"},
                           headers=agent_headers)
    assert response.status_code == 409


def test_the_openapi_document_describes_the_conversation_endpoints(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "/api/v1/conversations/{conversation_id}" in paths
    assert "/api/v1/conversations/{conversation_id}/reply" in paths
