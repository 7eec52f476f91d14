"""Demo data of the email channel: canned replies and a few enquiries through the real pipeline."""
from email.headerregistry import Address
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import select

from .ingest import receive
from ...extensions import db
from ...models import CannedReply, Customer, CustomerIdentity

# Placeholders {resident_name}, {case_reference} and {agent_name} are filled in on the conversation page.
CANNED = [
    ("Email: pothole timescales", "Dear {resident_name},\n\nThank you for reporting this. Our inspectors make "
     "dangerous potholes safe within 24 hours and repair others within 28 days. You can follow progress with "
     "your reference {case_reference}.\n\n{agent_name}\nContact centre"),
    ("Email: missed bin", "Dear {resident_name},\n\nSorry your bin was missed. The crew will return within two "
     "working days; please leave the bin out until it has been emptied.\n\n{agent_name}\nContact centre"),
    ("Email: need more details", "Dear {resident_name},\n\nThank you for your email. So that we can help, please "
     "tell us the full address or nearest landmark, and when you first noticed the problem.\n\n{agent_name}\n"
     "Contact centre"),
]
ENQUIRIES = [
    ("highways@council.example", "Pothole on Lowther Street",
     "There is a deep pothole outside the bus stop on Lowther Street, Carlisle. A cyclist nearly came off."),
    ("waste@council.example", "Bin not emptied",
     "Our green bin on Fell View, Keswick, was missed on Tuesday.\n\nThanks\n\n--\nSent from my iPhone"),
    ("contact@council.example", "Library opening on bank holiday",
     "Is Kendal library open on the bank holiday Monday?"),
    ("archives@council.example", "Parish records for Ulverston",
     "I am researching my family history and would like copies of baptism records for 1850-1860."),
]


def seed_email_demo() -> None:
    """Add canned replies, and a few enquiries from demo residents through the real pipeline.

    The senders are existing demo customers, so their emails join their timelines; no
    acknowledgements are queued (demo residents are not real).
    """
    for title, body in CANNED:
        if db.session.scalar(select(CannedReply).where(CannedReply.title == title)) is None:
            db.session.add(CannedReply(title=title, body=body, topic="email", channel="email"))
    db.session.commit()
    senders = db.session.execute(
        select(Customer.name, CustomerIdentity.value).join(CustomerIdentity, CustomerIdentity.customer_id == Customer.id)
        .where(CustomerIdentity.kind == "email", Customer.merged_into_id.is_(None))
        .order_by(Customer.id).limit(len(ENQUIRIES))).all()
    acks = current_app.config.get("EMAIL_ACK_ENABLED")
    current_app.config["EMAIL_ACK_ENABLED"] = False
    try:
        for n, ((name, address), (to, subject, body)) in enumerate(zip(senders, ENQUIRIES), start=1):
            message = EmailMessage()
            message["From"] = Address(name, addr_spec=address)
            message["To"] = to
            message["Subject"] = subject
            message["Message-ID"] = f"<demo-{n}@example.org>"
            message["Date"] = f"Tue, 24 Nov 2026 09:{n:02d}:00 +0000"
            message.set_content(body)
            receive(message.as_bytes(), source="file")
    finally:
        current_app.config["EMAIL_ACK_ENABLED"] = acks
