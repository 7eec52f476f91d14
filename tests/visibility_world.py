"""A small council with sensitive and ordinary content, and a member of staff of every role.

Secrets are marked strings (SECRET-...) so a test can say exactly what a response must not show.
"""
import hashlib
from dataclasses import dataclass, field

from crm.cases.service import add_note
from crm.customers.timeline import record_contact
from crm.extensions import db
from crm.models import Attachment, ChatSession, Conversation, Message, Queue
from tests import factories
from tests.conftest import PASSWORD

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82")


@dataclass
class World:
    users: dict = field(default_factory=dict)
    services: dict = field(default_factory=dict)
    customers: dict = field(default_factory=dict)
    cases: dict = field(default_factory=dict)
    conversations: dict = field(default_factory=dict)
    attachments: dict = field(default_factory=dict)
    contacts: dict = field(default_factory=dict)


def _conversation(customer, channel, subject, token, body, case=None, queue=None, topic=None, status="open",
                  assignee=None, note=None):
    conversation = Conversation(customer_id=customer.id, channel=channel, status=status, subject=subject,
                                token=token, case_id=case.id if case else None, queue_id=queue.id if queue else None,
                                topic=topic, assignee_id=assignee.id if assignee else None, last_seq=2 if note else 1)
    db.session.add(conversation)
    db.session.flush()
    message = Message(conversation_id=conversation.id, seq=1, author="resident", body=body)
    db.session.add(message)
    if note:
        db.session.add(Message(conversation_id=conversation.id, seq=2, author="agent", body=note, internal=True,
                               direction="outbound"))
    db.session.flush()
    attachment = Attachment(message_id=message.id, filename=f"{token}.png", content_type="image/png",
                            size=len(PNG), sha256=hashlib.sha256(PNG).hexdigest(), data=PNG)
    db.session.add(attachment)
    db.session.flush()
    return conversation, attachment


def build_world() -> World:
    """Make the services, staff, customers, cases, conversations, files and contacts the tests read."""
    w = World()
    w.services["highways"] = factories.service("highways", "Highways", categories=(("pothole", "Pothole"),))
    w.services["asc"] = factories.service("adult_social_care", "Adult Social Care",
                                          categories=(("safeguarding", "Safeguarding concern"),), sensitive=True)
    u = w.users
    u["agent"] = factories.user("agent", PASSWORD, email="agent@vis.example", name="Ada Agent")
    u["agent2"] = factories.user("agent", PASSWORD, email="agent2@vis.example", name="Bob Agent")
    u["supervisor"] = factories.user("supervisor", PASSWORD, email="sup@vis.example", name="Sue Supervisor")
    u["admin"] = factories.user("admin", PASSWORD, email="admin@vis.example", name="Al Admin")
    u["highways_officer"] = factories.user("service_officer", PASSWORD, email="hw@vis.example", name="Hal Highways",
                                           service_id=w.services["highways"].id)
    u["asc_officer"] = factories.user("service_officer", PASSWORD, email="asc@vis.example", name="Ruth Care",
                                      service_id=w.services["asc"].id)
    u["records"] = factories.user("records", PASSWORD, email="records@vis.example", name="Ros Records")

    jane = w.customers["jane"] = factories.customer("Jane Resident", email="jane@vis.example")
    jane.vulnerability_notes = "SECRET-VULNERABILITY lives alone, hard of hearing"
    rita = w.customers["rita"] = factories.customer("Rita Restricted", email="rita@vis.example")
    rita.restricted = True
    db.session.commit()

    c = w.cases
    c["pothole"] = factories.case(jane, title="Pothole on Main Street", description="Deep pothole by the bus stop",
                                  source_channel="open311")
    c["form_pothole"] = factories.case(jane, title="Pothole on Mill Lane", description="FORM-ANSWERS jane@vis.example",
                                       source_channel="web_form")
    c["phoned"] = factories.case(jane, title="Pothole on Back Lane", description="phoned in",
                                 source_channel="phone")
    c["asc"] = factories.case(jane, "adult_social_care", "safeguarding", title="SECRET-ASC-TITLE",
                              description="SECRET-ASC-DESCRIPTION", source_channel="open311")
    add_note(c["asc"], "SECRET-ASC-NOTE", u["asc_officer"])
    c["rita"] = factories.case(rita, title="SECRET-RITA-TITLE", description="SECRET-RITA-DESCRIPTION",
                               source_channel="open311")

    chat_queue = Queue(code="webchat", name="Webchat", channel="webchat")
    db.session.add(chat_queue)
    db.session.flush()
    cv, at = w.conversations, w.attachments
    cv["asc_email"], at["asc_email"] = _conversation(jane, "email", "About my neighbour", "tok-asc", "SECRET-ASC-EMAIL",
                                                     case=c["asc"], note="SECRET-ASC-EMAIL-NOTE")
    cv["pothole_email"], at["pothole_email"] = _conversation(jane, "email", "Pothole photo", "tok-pothole",
                                                             "Photo of the pothole", case=c["pothole"])
    cv["rita_email"], at["rita_email"] = _conversation(rita, "email", "SECRET-RITA-SUBJECT", "tok-rita",
                                                       "SECRET-RITA-EMAIL")
    # A chat whose topic is adult social care, in a queue of no service, live with agent2.
    cv["asc_chat"], at["asc_chat"] = _conversation(jane, "webchat", "Webchat: adult_social_care", "tok-chat",
                                                   "SECRET-ASC-CHAT", queue=chat_queue, topic="adult_social_care",
                                                   status="assigned", assignee=u["agent2"])
    db.session.add(ChatSession(conversation_id=cv["asc_chat"].id, name="Jane", email="jane@vis.example"))
    # An ordinary chat live with agent2: other agents may not read or write in it either.
    cv["live_chat"], at["live_chat"] = _conversation(jane, "webchat", "Webchat: waste", "tok-live",
                                                     "My bin was missed", queue=chat_queue, topic="waste",
                                                     status="assigned", assignee=u["agent2"])
    db.session.add(ChatSession(conversation_id=cv["live_chat"].id, name="Jane", email="jane@vis.example"))
    photo = Attachment(case_id=c["asc"].id, filename="asc.png", content_type="image/png", size=len(PNG),
                       sha256=hashlib.sha256(PNG).hexdigest(), data=PNG)
    db.session.add(photo)
    db.session.flush()
    at["asc_case_file"] = photo

    w.contacts["asc_email"] = record_contact(jane, "email", summary="SECRET-ASC-CONTACT", notes="SECRET-ASC-CONTACT-NOTES",
                                             conversation=cv["asc_email"], case=c["asc"])
    w.contacts["pothole_call"] = record_contact(jane, "phone", summary="Called about the pothole",
                                                notes="Reported a pothole", case=c["pothole"], agent=u["agent"])
    db.session.commit()
    return w
