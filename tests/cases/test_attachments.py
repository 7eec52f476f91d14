"""Files of a case: listed on the case page from every channel, thumbnails and downloads under the visibility rules."""
import hashlib
import io

import pytest
from PIL import Image

from crm.cases.attachments import case_attachments, thumbnail
from crm.channels import uploads
from crm.extensions import db
from crm.models import Attachment, Conversation, Message
from tests import factories


def _png(size=(600, 400)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def _attach(case=None, message=None, data=None, name="photo.png", content_type="image/png") -> Attachment:
    data = data if data is not None else _png()
    item = Attachment(case_id=case.id if case else None, message_id=message.id if message else None, filename=name,
                      content_type=content_type, size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data)
    db.session.add(item)
    db.session.commit()
    return item


@pytest.fixture
def officer_client(client, auth, make_user, app):
    highways = factories.service("highways", "Highways", categories=(("pothole", "Pothole"),))
    factories.service("adult_care", "Adult Social Care", categories=(("care_needs", "Care needs"),), sensitive=True)
    officer = make_user("service_officer", service_id=highways.id, name="Olive Officer")
    assert auth.login(officer).status_code == 302
    return client


def test_the_case_page_shows_form_and_email_photos_with_thumbnails_and_downloads(officer_client):
    customer = factories.customer("Jane", email="jane@example.org")
    case = factories.case(customer)
    photo = _attach(case)
    conversation = Conversation(customer_id=customer.id, channel="email", status="open", token="t-attach",
                                case_id=case.id, last_seq=2)
    db.session.add(conversation)
    db.session.flush()
    email = Message(conversation_id=conversation.id, seq=1, author="resident", body="see attached")
    note = Message(conversation_id=conversation.id, seq=2, author="agent", body="staff only", internal=True)
    db.session.add_all([email, note])
    db.session.flush()
    scan = _attach(message=email, data=b"%PDF-1.4 minimal", name="letter.pdf", content_type="application/pdf")
    _attach(message=note, name="internal.png")
    assert [a.filename for a in case_attachments(case)] == ["photo.png", "letter.pdf"]

    html = officer_client.get(f"/cases/{case.reference}").get_data(as_text=True)
    assert f'/email/attachments/{photo.id}/thumbnail' in html and 'alt="Photo: photo.png"' in html
    assert f'/email/attachments/{scan.id}?download=1' in html and "internal.png" not in html
    assert f'/email/attachments/{scan.id}/thumbnail' not in html  # a PDF gets a download, not a preview

    small = officer_client.get(f"/email/attachments/{photo.id}/thumbnail")
    assert small.status_code == 200 and small.mimetype == "image/jpeg"
    assert Image.open(io.BytesIO(small.data)).size == (320, 213)
    download = officer_client.get(f"/email/attachments/{photo.id}?download=1")
    assert download.headers["Content-Disposition"].startswith('attachment; filename="photo.png"')
    assert officer_client.get(f"/email/attachments/{scan.id}/thumbnail").status_code == 404


def test_a_sensitive_services_photo_is_refused_to_an_officer_of_another_service(officer_client):
    case = factories.case(factories.customer("Ann"), service_code="adult_care", category="care_needs")
    photo = _attach(case)
    assert officer_client.get(f"/email/attachments/{photo.id}/thumbnail").status_code == 403
    assert officer_client.get(f"/email/attachments/{photo.id}").status_code == 403


def test_an_upload_not_yet_filed_on_a_case_is_not_served(officer_client):
    draft_upload = _attach()
    assert officer_client.get(f"/email/attachments/{draft_upload.id}/thumbnail").status_code in (403, 404)
    assert officer_client.get(f"/email/attachments/{draft_upload.id}").status_code in (403, 404)


def test_no_thumbnail_is_made_of_an_image_over_the_pixel_budget(app, monkeypatch):
    factories.service("highways", "Highways")
    case = factories.case(factories.customer())
    big = _attach(case, data=_png((1200, 1000)))
    monkeypatch.setattr(uploads, "MAX_PIXELS", 1_000_000)
    assert thumbnail(big) is None
    broken = _attach(case, data=b"\x89PNG\r\n\x1a\nnot really", name="broken.png")
    assert thumbnail(broken) is None
