"""Fixtures for the resident pages: services, published forms, photos, a loopback SMTP catcher."""
import io
import socket
import time

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from crm.extensions import db as _db
from crm.models import FormDefinition
from tests import factories

POTHOLE_FIELDS = [
    {"name": "location", "label": "Where is the pothole?", "type": "text", "required": True, "location": True,
     "error": "Enter where the pothole is"},
    {"name": "size", "label": "How big is it?", "type": "radios", "required": True,
     "options": ["Smaller than a dinner plate", "Larger than a dinner plate"]},
    {"name": "hazards", "label": "Is it near any of these?", "type": "checkboxes",
     "options": ["A school", "A bus stop", "A junction"]},
    {"name": "noticed", "label": "When did you notice it?", "type": "date"},
    {"name": "road_type", "label": "What kind of road?", "type": "select", "options": ["Main road", "Side street"]},
    {"name": "details", "label": "Anything else?", "type": "textarea"},
    {"name": "photo", "label": "Add a photo", "type": "file"},
]
LIGHT_FIELDS = [
    {"name": "location", "label": "Where is the street light?", "type": "text", "required": True, "location": True},
    {"name": "fault", "label": "What is wrong with it?", "type": "radios", "required": True,
     "options": ["Not working at all", "Flickering"]},
    {"name": "photo", "label": "Add a photo", "type": "file"},
]


@pytest.fixture
def highways(app):
    """The Highways service with pothole and street light categories."""
    return factories.service(categories=(("pothole", "Pothole"), ("streetlight_fault", "Street light")))


@pytest.fixture
def pothole_form(highways):
    """A published one-page form with every kind of question."""
    made = FormDefinition(slug="report-a-pothole", title="Report a pothole", service_id=highways.id,
                          category_code="pothole", fields=POTHOLE_FIELDS, description="Tell us about a pothole.")
    _db.session.add(made)
    _db.session.commit()
    return made


@pytest.fixture
def light_form(highways):
    """A published form that asks one question per page."""
    made = FormDefinition(slug="street-light", title="Report a street light fault", service_id=highways.id,
                          category_code="streetlight_fault", fields=LIGHT_FIELDS, one_question_per_page=True)
    _db.session.add(made)
    _db.session.commit()
    return made


def _rational(value):
    return IFDRational(int(round(value * 1_000_000)), 1_000_000)


def jpeg_with_gps(lat=54.8925, lon=-2.9329, size=(64, 48)) -> bytes:
    """Return a real JPEG carrying camera make and a GPS position in its EXIF."""
    image = Image.new("RGB", size, (120, 90, 60))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = {1: "N" if lat >= 0 else "S", 2: tuple(_rational(v) for v in _dms(abs(lat))),
           3: "E" if lon >= 0 else "W", 4: tuple(_rational(v) for v in _dms(abs(lon)))}
    exif[0x8825] = gps
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def _dms(value):
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return degrees, minutes, seconds


def png_bytes(size=(20, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (0, 128, 0, 255)).save(out, "PNG")
    return out.getvalue()


class SmtpCatcher:
    """A real SMTP server on loopback that keeps what it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        catcher = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                catcher.messages.append(envelope)
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    @staticmethod
    def text(envelope) -> str:
        """Return the decoded plain-text body of a caught message."""
        from email import message_from_bytes, policy

        message = message_from_bytes(envelope.content, policy=policy.default)
        part = message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def link(self, envelope) -> str:
        """Return the sign-in link in a caught message."""
        import re

        return re.search(r"https?://\S+/account/link/[A-Za-z0-9_\-]+", self.text(envelope)).group(0)

    def wait_for(self, count=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


@pytest.fixture
def smtp(app):
    """A loopback SMTP server the app sends to."""
    catcher = SmtpCatcher()
    catcher.controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=catcher.port, SMTP_STARTTLS=False)
    yield catcher
    catcher.controller.stop()
