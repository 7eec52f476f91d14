"""Webchat demo data: weekday opening hours, topic queues and canned replies."""
from datetime import time

from sqlalchemy import select

from ..extensions import db
from ..models import CannedReply, OpeningHours, Queue

HOURS = [(day, time(8, 30), time(18)) for day in range(5)] + [(5, time(9), time(13))]
TOPIC_QUEUES = [("webchat_council_tax", "Webchat: Council Tax"), ("webchat_adult_social_care", "Webchat: Adult Social Care")]
CANNED = [
    ("Greeting", "Hello, thank you for contacting the council. How can I help you today?"),
    ("Check details", "So that I can find your records, could you confirm your full address and postcode?"),
    ("Missed bin", "I'm sorry your bin was missed. I have reported it and the crew will return within two working days."),
    ("Case raised", "I have raised this with the service; you will receive an email with your reference."),
    ("Anything else", "Is there anything else I can help you with today?"),
    ("Closing", "Thank you for chatting with us. You can ask for a transcript of this chat by email."),
]


def seed_webchat():
    """Add opening hours (Mon-Fri 08:30-18:00, Sat 09:00-13:00), topic queues and canned replies."""
    if not db.session.scalar(select(OpeningHours).limit(1)):
        db.session.add_all([OpeningHours(weekday=d, opens=o, closes=c) for d, o, c in HOURS])
    have = set(db.session.scalars(select(Queue.code)))
    db.session.add_all([Queue(code=code, name=name, channel="webchat") for code, name in TOPIC_QUEUES if code not in have])
    if not db.session.scalar(select(CannedReply).limit(1)):
        db.session.add_all([CannedReply(title=title, body=body) for title, body in CANNED])
    db.session.flush()
