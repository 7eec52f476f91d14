"""Build a customer with a merged history on every channel, and a stranger beside them."""
from datetime import datetime, timedelta, timezone

from sqlalchemy import LargeBinary, JSON, String, Text, select, text

from crm.cases.service import add_note, post_public_update
from crm.customers.identity import add_identity, create_customer
from crm.customers.merge import merge_customers
from crm.customers.timeline import record_contact
from crm.extensions import db
from crm.models import (
    Attachment, ChatSession, Conversation, Message, Open311Request, ResidentAccount, ResidentSignInToken, utcnow,
)
from crm.cases.service import open_case
from crm.audit import audit
from tests import factories

# Values that identify the person; none may survive an erasure anywhere.
NAME = "Philippa Quenby"
EMAIL = "philippa.quenby@example.org"
OLD_EMAIL = "pquenby@example.net"
PHONE = "07700 900123"
PHONE_E164 = "+447700900123"
LINE1 = "12 Wisteria Lane"
POSTCODE = "ZZ9 9ZZ"
PERSONAL = ["philippa", "quenby", "wisteria", "zz9 9zz", "zz99zz", "7700900123", "7700 900123"]
# Someone else's data, which must never appear in the export.
STRANGER = "Bartholomew Stranger"
STRANGER_EMAIL = "bart.stranger@example.com"
THIRD_PARTY = "Mrs Neighbourly"

RAW_EMAIL = (
    "From: Philippa Q <pquenby@example.net>\r\n"
    "To: contact@council.example\r\n"
    "Subject: Bins not collected at 12 Wisteria Lane\r\n"
    "Message-ID: <sar-test-1@example.net>\r\n"
    "Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=XYZ\r\n\r\n"
    "--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "Hello, my bins were not collected again. Philippa Quenby, ZZ9 9ZZ\r\n"
    "--XYZ\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"bin.png\"\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==\r\n"
    "--XYZ--\r\n"
).encode()


def build_history(client, agent, agent_headers):
    """Make the person (two records merged, every channel) and a stranger; return (customer_id, stranger_id)."""
    factories.service()
    factories.service(code="waste", name="Waste", categories=(("missed_bin", "Missed bin"),))
    # An email from an address we did not know yet: the email channel makes a second record.
    response = client.post("/api/v1/inbound/email", data=RAW_EMAIL,
                           headers={**agent_headers, "Content-Type": "message/rfc822"})
    assert response.status_code == 200, response.get_data(as_text=True)
    old_id = response.get_json()["customer_id"]

    person = create_customer(NAME, EMAIL, PHONE, {"line1": LINE1, "town": "Borchester", "postcode": POSTCODE})
    db.session.flush()
    merge_customers(db.session.get(type(person), old_id), person, agent)
    person = db.session.get(type(person), person.id)

    # Phone call with notes, and a case raised from it with a public update and an internal note.
    call = record_contact(person, "phone", summary="Pothole outside 12 Wisteria Lane", category="pothole",
                          notes="Caller Philippa says the hole is deep", outcome="case_raised", agent=agent,
                          started_at=utcnow() - timedelta(minutes=5), ended_at=utcnow())
    case = open_case(person, "highways", "pothole", "Pothole at 12 Wisteria Lane", "Deep hole", actor=agent,
                     contact=call, source_channel="phone", location_address="12 Wisteria Lane, ZZ9 9ZZ")
    post_public_update(case, "An inspector will visit this week", actor=agent)
    add_note(case, f"Internal: {THIRD_PARTY} next door also complained", actor=agent)

    # Web form and Open311 reports.
    form_case = open_case(person, "waste", "missed_bin", "Missed bin", "Bin day Tuesday", source_channel="web_form")
    record_contact(person, "web_form", summary="Missed bin form", category="missed_bin", outcome="case_raised",
                   case=form_case)
    app_case = open_case(person, "highways", "pothole", "Pothole by the school", "Reported in an app",
                         source_channel="open311", latitude=52.1, longitude=-1.2)
    db.session.add(Open311Request(token="o311-test-token", case_id=app_case.id, service_code="pothole",
                                  address_string="Outside 12 Wisteria Lane", device_id="dev-1",
                                  account_id=EMAIL, attributes={"reporter": NAME}))
    record_contact(person, "open311", summary="Open311 report", category="pothole", outcome="case_raised", case=app_case)

    # A webchat with a rating, a photo, an internal note and a third party named.
    chat = Conversation(customer_id=person.id, channel="webchat", status="ended", token="chat-test-token",
                        topic="council_tax", last_seq=3, last_message_at=utcnow())
    db.session.add(chat)
    db.session.flush()
    db.session.add(ChatSession(conversation_id=chat.id, name=NAME, email=EMAIL, phone=PHONE_E164,
                               visitor_ip="192.0.2.7", rating=5, ended_at=utcnow()))
    first = Message(conversation_id=chat.id, seq=1, author="resident", body=f"Hi, I am {NAME}; {THIRD_PARTY} said to ask")
    db.session.add_all([first,
                        Message(conversation_id=chat.id, seq=2, author="agent", author_user_id=agent.id,
                                direction="outbound", body="Hello Philippa, how can I help?"),
                        Message(conversation_id=chat.id, seq=3, author="agent", author_user_id=agent.id,
                                direction="outbound", internal=True, body="Note: Philippa sounded upset")])
    db.session.flush()
    db.session.add(Attachment(message_id=first.id, filename="photo.jpg", content_type="image/jpeg", size=9,
                              sha256="0" * 64, data=b"jpegbytes"))
    record_contact(person, "webchat", summary="Webchat about council tax", category="council_tax",
                   outcome="resolved_first_time", conversation=chat, agent=agent)

    # The resident's online account, with email updates turned off.
    identity = add_identity(person, "portal", EMAIL, verified=True, source="portal")
    db.session.flush()
    account = ResidentAccount(email=EMAIL, name=NAME, identity_id=identity.id, email_updates=False,
                              session_stamp="s" * 32, email_verified_at=utcnow())
    db.session.add(account)
    db.session.flush()
    db.session.add(ResidentSignInToken(account_id=account.id, token_hash="h" * 64, expires_at=utcnow()))
    person.preferred_channel = "phone"
    audit(agent, "customer.view_sensitive", "customer", person.id, note=f"viewed {NAME}")

    stranger = create_customer(STRANGER, STRANGER_EMAIL, "07700 900999", {"line1": "1 Elsewhere", "postcode": "YY1 1YY"})
    db.session.flush()
    record_contact(stranger, "phone", summary="Stranger's call", notes="About their own thing", category="pothole",
                   outcome="resolved_first_time", agent=agent)
    db.session.commit()
    return person.id, stranger.id


def text_columns():
    """Yield (table, column) for every column of every table that can hold text or bytes."""
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, (String, Text, JSON, LargeBinary)):
                yield table, column


def scan_database(values) -> list[str]:
    """Return 'table.column' for every stored value that contains one of the values (case-insensitive)."""
    found = []
    wanted = [v.lower() for v in values]
    for table, column in text_columns():
        for (value,) in db.session.execute(select(column).where(column.is_not(None))):
            if isinstance(value, (bytes, memoryview)):
                value = bytes(value).decode("utf-8", "replace")
            elif not isinstance(value, str):
                import json

                value = json.dumps(value, ensure_ascii=False)
            low = value.lower()
            hits = [w for w in wanted if w in low]
            if hits:
                found.append(f"{table.name}.{column.name}: {hits}")
    return found
