"""The web-form channel adapter: definitions read as data, photos cleaned, a submission made a case."""
import io

import pytest
from PIL import Image
from sqlalchemy import select

from crm.channels.uploads import clean_photo, photo_location
from crm.channels.web_form import Submission, ResidentDetails, parse_fields, read_answers, submit
from crm.errors import ValidationFailed
from crm.models import Contact, FormDefinition
from tests import factories
from tests.portal.conftest import POTHOLE_FIELDS, jpeg_with_gps
from werkzeug.datastructures import MultiDict


def test_parse_fields_reads_every_question_type():
    specs = parse_fields(POTHOLE_FIELDS)
    assert [s.type for s in specs] == ["text", "radios", "checkboxes", "date", "select", "textarea", "file"]
    assert specs[0].location and specs[0].required and specs[1].options[0] == "Smaller than a dinner plate"


@pytest.mark.parametrize("bad, message", [
    ("not a list", "must be a JSON list"),
    ([{"name": "Where", "label": "x"}], "lower-case letters"),
    ([{"name": "a", "label": "x"}, {"name": "a", "label": "y"}], "is taken"),
    ([{"name": "email", "label": "x"}], "is taken"),
    ([{"name": "a", "label": "x", "type": "colour"}], "type must be one of"),
    ([{"name": "a", "label": ""}], "needs a label"),
    ([{"name": "a", "label": "x", "type": "radios"}], "needs a list of options"),
    ([{"name": "a", "label": "x", "type": "select", "options": ["A", "A"]}], "must differ"),
    (["text"], "must be an object"),
])
def test_parse_fields_refuses_what_cannot_be_shown(bad, message):
    with pytest.raises(ValidationFailed) as refused:
        parse_fields(bad)
    assert message in " ".join(refused.value.fields.get("fields", [refused.value.message]))


def test_read_answers_normalises_and_checks():
    specs = parse_fields(POTHOLE_FIELDS + [{"name": "contact_email", "label": "Email", "type": "email"},
                                           {"name": "mobile", "label": "Mobile", "type": "tel"}])
    answers, errors = read_answers(specs, MultiDict([
        ("location", "  Main St  "), ("size", "Smaller than a dinner plate"), ("hazards", "A junction"),
        ("hazards", "A school"), ("noticed-day", "29"), ("noticed-month", "2"), ("noticed-year", "2028"),
        ("contact_email", "Someone@Example.ORG"), ("mobile", "07700 900 982")]))
    assert errors == {}
    assert answers["location"] == "Main St" and answers["hazards"] == ["A school", "A junction"]
    assert answers["noticed"] == "2028-02-29" and answers["contact_email"] == "someone@example.org"
    assert answers["mobile"] == "+447700900982"
    _, errors = read_answers(specs, MultiDict([("noticed-day", "29"), ("noticed-month", "2"), ("noticed-year", "2027"),
                                               ("mobile", "not a phone")]))
    assert set(errors) == {"location", "size", "noticed", "mobile"}


def test_clean_photo_strips_gps_but_keeps_the_rest():
    original = jpeg_with_gps()
    cleaned = clean_photo(original)
    exif = Image.open(io.BytesIO(cleaned.data)).getexif()
    assert cleaned.content_type == "image/jpeg" and 0x8825 not in exif and exif[0x010F] == "PhoneMaker"
    assert cleaned.latitude is None
    kept = clean_photo(original, keep_location=True)
    lat, lon = photo_location(Image.open(io.BytesIO(kept.data)).getexif())
    assert abs(lat - 54.8925) < 1e-4 and abs(lon + 2.9329) < 1e-4 and kept.latitude == pytest.approx(lat)


def test_clean_photo_strips_gps_from_png_and_webp_too():
    for kind in ("PNG", "WEBP"):
        exif = Image.open(io.BytesIO(jpeg_with_gps())).getexif()
        out = io.BytesIO()
        Image.new("RGB", (16, 16), "red").save(out, kind, exif=exif.tobytes())
        assert 0x8825 in Image.open(io.BytesIO(out.getvalue())).getexif()
        cleaned = clean_photo(out.getvalue())
        assert cleaned.content_type == f"image/{kind.lower()}"
        assert 0x8825 not in Image.open(io.BytesIO(cleaned.data)).getexif()


def test_clean_photo_drops_comments_xmp_and_anything_hidden_after_the_image():
    image = Image.new("RGB", (32, 32), "blue")
    out = io.BytesIO()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><exif:GPSLatitude>54,53.55N</exif:GPSLatitude></x:xmpmeta>'
    image.save(out, "JPEG", comment=b"secret comment", xmp=xmp)
    polyglot = out.getvalue() + b"<script>alert('stored xss')</script>"
    cleaned = clean_photo(polyglot).data
    assert b"GPSLatitude" not in cleaned and b"secret comment" not in cleaned and b"<script>" not in cleaned
    assert Image.open(io.BytesIO(cleaned)).size == (32, 32)


def test_clean_photo_refuses_non_images_empty_and_huge_pixel_counts():
    for data in (b"", b"GIF89a" + b"\x00" * 100, b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, b"MZ\x90\x00 executable"):
        with pytest.raises(ValidationFailed):
            clean_photo(data)
    # A tiny file that claims to be 20,000 x 20,000 pixels (a decompression bomb) is refused unread.
    bomb = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bomb, "PNG")
    with pytest.raises(ValidationFailed) as refused:
        clean_photo(bomb.getvalue())
    assert "too many pixels" in refused.value.message


def test_submit_resolves_records_and_raises_a_case(app, db):
    service = factories.service(categories=(("pothole", "Pothole"),))
    definition = FormDefinition(slug="p", title="Report a pothole", service_id=service.id, category_code="pothole",
                                fields=POTHOLE_FIELDS)
    db.session.add(definition)
    known = factories.customer(name="Known Caller", email="known@example.org")
    contact, case = submit(Submission(definition, {"location": "Main St", "size": "Smaller than a dinner plate"},
                                      ResidentDetails("Known Caller", "KNOWN@example.org", None)))
    db.session.commit()
    assert case.customer_id == known.id and contact.channel == "web_form" and contact.case_id == case.id
    assert case.raised_by_contact_id == contact.id and case.reference.startswith("CAS-")


def test_an_agent_filling_the_form_records_a_phone_contact(app, db, make_user):
    service = factories.service(categories=(("pothole", "Pothole"),))
    definition = FormDefinition(slug="p", title="Report a pothole", service_id=service.id, category_code="pothole",
                                fields=POTHOLE_FIELDS)
    db.session.add(definition)
    caller = factories.customer(name="Caller", phone="07700900333")
    agent = make_user("agent")
    contact, case = submit(Submission(definition, {"location": "Bridge St"}, customer=caller), agent=agent)
    db.session.commit()
    assert contact.channel == "phone" and contact.agent_id == agent.id and contact.outcome == "case_raised"
    assert case.source_channel == "phone" and case.customer_id == caller.id
    assert db.session.scalar(select(Contact).where(Contact.case_id == case.id)).id == contact.id
