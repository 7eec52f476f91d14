"""Public web forms through the real app: rendering, errors that keep what was typed, cases, uploads."""
import io
import re

from PIL import Image
from sqlalchemy import select

from crm.models import Attachment, Case, Contact, FormDefinition
from tests.conftest import csrf_from
from tests.portal.conftest import jpeg_with_gps, png_bytes

GOOD = {"location": "Outside 12 Main Street", "size": "Larger than a dinner plate", "hazards": ["A school"],
        "noticed-day": "3", "noticed-month": "11", "noticed-year": "2026", "road_type": "Main road",
        "details": "Deep enough to damage a tyre", "name": "Jane Resident", "email": "Jane@Example.org",
        "phone": ""}


def _post(client, slug, data, files=None):
    page = client.get(f"/forms/{slug}")
    body = dict(data, csrf_token=csrf_from(page.get_data(as_text=True)))
    if files:
        body.update(files)
    return client.post(f"/forms/{slug}", data=body, content_type="multipart/form-data")


def test_the_form_list_shows_published_forms_only(client, pothole_form, db):
    hidden = FormDefinition(slug="draft-form", title="Unpublished thing", service_id=pothole_form.service_id,
                            category_code="pothole", fields=[], published=False)
    db.session.add(hidden)
    db.session.commit()
    page = client.get("/forms/").get_data(as_text=True)
    assert "Report a pothole" in page and "Unpublished thing" not in page
    assert client.get("/forms/draft-form").status_code == 404
    assert client.get("/forms/no-such-form").status_code == 404


def test_a_form_renders_govuk_components_with_the_councils_brand(client, pothole_form):
    page = client.get("/forms/report-a-pothole").get_data(as_text=True)
    for marker in ('class="govuk-input', 'class="govuk-radios', 'class="govuk-checkboxes', 'class="govuk-date-input',
                   'class="govuk-select', 'class="govuk-textarea', 'class="govuk-file-upload', 'name="csrf_token"',
                   'enctype="multipart/form-data"', "vendor/portal.css"):
        assert marker in page, marker
    assert "govuk-header__logotype" not in page and "GOV.UK" not in page


def test_a_good_submission_raises_a_routed_case_and_shows_its_reference(client, pothole_form, db):
    response = _post(client, "report-a-pothole", GOOD)
    assert response.status_code == 303
    done = client.get(response.headers["Location"])
    reference = re.search(r'id="case-reference">(CAS-\d+)<', done.get_data(as_text=True)).group(1)
    case = db.session.scalar(select(Case).where(Case.reference == reference))
    assert case.service.code == "highways" and case.category == "pothole"
    assert case.title == "Report a pothole: Outside 12 Main Street"
    assert case.location_address == "Outside 12 Main Street"
    assert "Larger than a dinner plate" in case.description and "3 November 2026" in case.description
    assert case.source_channel == "web_form"
    contact = db.session.scalar(select(Contact).where(Contact.case_id == case.id))
    assert contact.channel == "web_form" and contact.outcome == "case_raised"
    assert case.customer.primary_email == "jane@example.org"


def test_the_same_resident_is_matched_by_email_on_a_second_form(client, pothole_form, db):
    _post(client, "report-a-pothole", GOOD)
    _post(client, "report-a-pothole", dict(GOOD, email="jane@example.org", location="Elsewhere"))
    cases = db.session.scalars(select(Case)).all()
    assert len(cases) == 2 and cases[0].customer_id == cases[1].customer_id


def test_errors_show_the_summary_and_keep_what_was_typed(client, pothole_form, db):
    bad = dict(GOOD, location="", size="", email="not-an-email", details="Keep <this> text",
               **{"noticed-day": "31", "noticed-month": "2"})
    response = _post(client, "report-a-pothole", bad)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "govuk-error-summary" in page and "<title>Error: " in page
    assert 'href="#location">Enter where the pothole is' in page
    assert 'href="#size">Select an answer to: How big is it' in page
    assert 'href="#noticed-day">Enter a real date' in page
    assert 'href="#email">Enter an email address in the correct format' in page
    assert "Keep &lt;this&gt; text" in page  # typed text back, escaped
    assert 'value="A school" checked' in page
    assert 'value="31"' in page and 'value="Main road" selected' in page
    assert db.session.scalar(select(Case)) is None


def test_an_email_or_a_phone_is_needed(client, pothole_form):
    response = _post(client, "report-a-pothole", dict(GOOD, email="", phone=""))
    assert response.status_code == 400
    assert "Enter an email address or a phone number" in response.get_data(as_text=True)
    assert _post(client, "report-a-pothole", dict(GOOD, email="", phone="07700 900982")).status_code == 303


def test_answers_outside_the_options_are_refused_not_stored(client, pothole_form, db):
    for tampered in ({"size": "Bottomless"}, {"hazards": ["A volcano"]}, {"road_type": "Motorway"}):
        response = _post(client, "report-a-pothole", dict(GOOD, **tampered))
        assert response.status_code == 400, tampered
        assert "Select from the options given" in response.get_data(as_text=True)
    assert db.session.scalar(select(Case)) is None


def test_over_long_answers_are_refused(client, pothole_form):
    response = _post(client, "report-a-pothole", dict(GOOD, details="x" * 5001))
    assert response.status_code == 400
    assert "5000 characters or fewer" in response.get_data(as_text=True)


def test_a_post_without_the_csrf_token_is_refused(client, pothole_form, db):
    response = client.post("/forms/report-a-pothole", data=GOOD)
    assert response.status_code == 400
    assert "govuk-" in response.get_data(as_text=True)  # the resident's error page, not the console's
    assert db.session.scalar(select(Case)) is None


def test_a_photo_is_stored_with_the_case_without_its_location(client, pothole_form, db):
    response = _post(client, "report-a-pothole", GOOD,
                     {"photo": (io.BytesIO(jpeg_with_gps()), "../../etc/IMG_0001.JPG.exe")})
    assert response.status_code == 303
    case = db.session.scalar(select(Case))
    attachment = db.session.scalar(select(Attachment).where(Attachment.case_id == case.id))
    assert attachment.content_type == "image/jpeg" and attachment.filename == "IMG_0001JPG.jpg"
    stored = Image.open(io.BytesIO(attachment.data))
    exif = stored.getexif()
    assert 0x8825 not in exif and exif.get(0x010F) == "PhoneMaker"
    assert case.latitude is None
    assert "photo attached" in case.description


def test_a_resident_may_keep_the_photo_location(client, pothole_form, db):
    response = _post(client, "report-a-pothole", dict(GOOD, photo_keep_location="yes"),
                     {"photo": (io.BytesIO(jpeg_with_gps(54.8925, -2.9329)), "pothole.jpg")})
    assert response.status_code == 303
    case = db.session.scalar(select(Case))
    attachment = db.session.scalar(select(Attachment).where(Attachment.case_id == case.id))
    assert 0x8825 in Image.open(io.BytesIO(attachment.data)).getexif()
    assert abs(case.latitude - 54.8925) < 1e-4 and abs(case.longitude + 2.9329) < 1e-4


def test_a_file_that_is_not_a_photo_is_refused_whatever_its_name(client, pothole_form, db):
    for data, name in ((b"<html><script>alert(1)</script></html>", "photo.jpg"),
                       (b"%PDF-1.4 not an image", "scan.png"),
                       (png_bytes()[:40], "truncated.png")):
        response = _post(client, "report-a-pothole", GOOD, {"photo": (io.BytesIO(data), name)})
        assert response.status_code == 400, name
        assert "must be a JPG, PNG or WEBP photo" in response.get_data(as_text=True)
    assert db.session.scalar(select(Case)) is None
    assert db.session.scalar(select(Attachment)) is None


def test_a_photo_over_the_size_limit_is_refused(app, client, pothole_form):
    app.config["PORTAL_MAX_PHOTO_BYTES"] = 1000
    response = _post(client, "report-a-pothole", GOOD, {"photo": (io.BytesIO(jpeg_with_gps(size=(400, 400))), "a.jpg")})
    assert response.status_code == 400
    assert "must be smaller than" in response.get_data(as_text=True)


def test_a_photo_sent_with_an_error_elsewhere_is_kept_for_the_next_try(client, pothole_form, db):
    first = _post(client, "report-a-pothole", dict(GOOD, location=""), {"photo": (io.BytesIO(png_bytes()), "hole.png")})
    assert first.status_code == 400
    assert "You have already sent hole.png" in first.get_data(as_text=True)
    second = _post(client, "report-a-pothole", GOOD)
    assert second.status_code == 303
    case = db.session.scalar(select(Case))
    attachment = db.session.scalar(select(Attachment))
    assert attachment.case_id == case.id and attachment.content_type == "image/png"


def test_a_request_over_the_upload_limit_gets_413(app, client, pothole_form):
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    response = _post(client, "report-a-pothole", GOOD, {"photo": (io.BytesIO(b"x" * 20_000), "big.jpg")})
    assert response.status_code == 413


def test_submissions_are_rate_limited(app, client, pothole_form):
    app.config["PORTAL_SUBMIT_LIMIT"] = "3 per minute"
    statuses = [_post(client, "report-a-pothole", dict(GOOD, location=f"Spot {n}")).status_code for n in range(4)]
    assert statuses == [303, 303, 303, 429]


def test_a_long_form_asks_one_question_a_page_then_checks_answers(client, light_form, db):
    start = client.get("/forms/street-light").get_data(as_text=True)
    assert "Start now" in start and "/forms/street-light/location" in start
    page = client.get("/forms/street-light/location")
    token = csrf_from(page.get_data(as_text=True))
    assert 'class="govuk-label-wrapper"' in page.get_data(as_text=True)  # the question is the page heading
    missing = client.post("/forms/street-light/location", data={"csrf_token": token, "location": ""})
    assert missing.status_code == 400 and "govuk-error-summary" in missing.get_data(as_text=True)
    assert client.post("/forms/street-light/location", data={"csrf_token": token, "location": "Fell View lamp 7"}
                       ).headers["Location"].endswith("/forms/street-light/fault")
    assert client.post("/forms/street-light/fault", data={"csrf_token": token, "fault": "Flickering"}
                       ).headers["Location"].endswith("/forms/street-light/photo")
    assert client.post("/forms/street-light/photo", data={"csrf_token": token},
                       content_type="multipart/form-data").headers["Location"].endswith("/forms/street-light/your-details")
    assert client.post("/forms/street-light/your-details", data={
        "csrf_token": token, "name": "Sam Walker", "email": "", "phone": "07700 900123"}
    ).headers["Location"].endswith("/forms/street-light/check-answers")
    check = client.get("/forms/street-light/check-answers").get_data(as_text=True)
    assert "Fell View lamp 7" in check and "Flickering" in check and "+447700900123" in check
    changed = client.post("/forms/street-light/fault?change=1", data={"csrf_token": token, "fault": "Not working at all"})
    assert changed.headers["Location"].endswith("/forms/street-light/check-answers")
    sent = client.post("/forms/street-light/check-answers", data={"csrf_token": token})
    assert sent.status_code == 303
    done = client.get(sent.headers["Location"]).get_data(as_text=True)
    case = db.session.scalar(select(Case))
    assert case.reference in done and "Not working at all" in case.description
    assert case.customer.primary_phone == "+447700900123"


def test_check_answers_sends_back_to_the_first_unanswered_question(client, light_form):
    response = client.get("/forms/street-light/check-answers")
    assert response.status_code == 303 and response.headers["Location"].endswith("/forms/street-light/location")
    assert client.get("/forms/street-light/no-such-step").status_code == 404


def test_the_confirmation_page_shows_only_this_browsers_reference(client, app, pothole_form):
    _post(client, "report-a-pothole", GOOD)
    other = app.test_client()
    response = other.get("/forms/report-a-pothole/confirmation")
    assert response.status_code == 302 and "CAS-" not in response.get_data(as_text=True)


def test_the_resident_is_emailed_their_reference(client, smtp, pothole_form, db):
    response = _post(client, "report-a-pothole", GOOD)
    assert response.status_code == 303
    case = db.session.scalar(select(Case))
    envelope = smtp.wait_for(1)[-1]
    assert envelope.rcpt_tos == ["jane@example.org"]
    text = smtp.text(envelope)
    assert case.reference in text
    assert "We have sent a confirmation email" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_no_email_is_sent_when_the_resident_gave_only_a_phone(client, smtp, pothole_form):
    response = _post(client, "report-a-pothole", dict(GOOD, email="", phone="07700 900982"))
    assert response.status_code == 303
    assert smtp.wait_for(1, timeout=1.0) == []


def test_control_characters_are_dropped_from_answers(client, pothole_form, db):
    response = _post(client, "report-a-pothole", dict(GOOD, location="Main\x00 Street\x1b", name="Jane\x00 Resident"))
    assert response.status_code == 303
    case = db.session.scalar(select(Case))
    assert case.location_address == "Main Street" and case.customer.name == "Jane Resident"


def test_a_one_question_a_page_form_also_takes_a_whole_form_post(client, light_form, db):
    page = client.get("/forms/street-light").get_data(as_text=True)
    assert "Start now" in page
    token = csrf_from(client.get("/forms/street-light/location").get_data(as_text=True))
    response = client.post("/forms/street-light", data={
        "csrf_token": token, "location": "Lamp 9", "fault": "Flickering", "name": "Script User",
        "email": "script@example.org"}, content_type="multipart/form-data")
    assert response.status_code == 303
    assert db.session.scalar(select(Case)).title == "Report a street light fault: Lamp 9"


def test_abandoned_drafts_and_their_photos_are_purged_after_a_day(client, pothole_form, db):
    from datetime import timedelta

    from crm.models import FormDraft, utcnow
    from crm.portal.drafts import purge_stale_drafts

    _post(client, "report-a-pothole", dict(GOOD, location=""), {"photo": (io.BytesIO(png_bytes()), "hole.png")})
    assert db.session.scalar(select(FormDraft)) is not None
    assert purge_stale_drafts() == 0  # fresh: kept
    assert purge_stale_drafts(now=utcnow() + timedelta(hours=25)) == 1
    assert db.session.scalar(select(FormDraft)) is None and db.session.scalar(select(Attachment)) is None
