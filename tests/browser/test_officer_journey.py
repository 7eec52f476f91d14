"""A service officer works a reported pothole in real Chromium: sees the resident's photos, reads human
labels, publishes an update only after confirming it, resolves with a reason the resident then reads
on /track (typing the reference the way people do) and in their email."""
import hashlib
import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from crm.cases.service import change_status
from crm.channels.uploads import clean_photo, photo_attachment
from crm.extensions import db
from crm.models import Attachment, Conversation, Message
from tests import factories
from tests.browser.axe import assert_accessible
from tests.conftest import PASSWORD
from tests.portal.conftest import jpeg_with_gps

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser walk is enough; the database paths are covered on both backends")


def _png(size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def _reported_pothole():
    """A pothole reported by form with a photo, and an email about it carrying a second photo."""
    highways = factories.service(categories=(("pothole", "Pothole"),))
    jane = factories.customer("Jane Resident", email="jane@example.org")
    case = factories.case(jane, title="Pothole outside 12 Main Street")
    photo = photo_attachment(clean_photo(jpeg_with_gps(size=(800, 600))), "pothole.jpg")
    photo.case_id = case.id
    db.session.add(photo)
    conversation = Conversation(customer_id=jane.id, channel="email", status="open", subject="More photos",
                                token="tok-officer-journey", case_id=case.id, last_seq=1)
    db.session.add(conversation)
    db.session.flush()
    message = Message(conversation_id=conversation.id, seq=1, author="resident", body="Another angle")
    db.session.add(message)
    db.session.flush()
    data = _png()
    db.session.add(Attachment(message_id=message.id, filename="angle.png", content_type="image/png", size=len(data),
                              sha256=hashlib.sha256(data).hexdigest(), data=data))
    change_status(case, "in_progress")
    db.session.commit()
    return highways, case


def _sign_in(page, live_server, user, path):
    page.goto(f"{live_server}{path}")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}{path}")


def test_an_officer_sees_the_photos_confirms_an_update_and_the_resident_reads_the_resolution(
        app, live_server, page, chromium, make_user, smtp_sink):
    highways, case = _reported_pothole()
    officer = make_user("service_officer", name="Olive Officer", service_id=highways.id)
    checked = []
    _sign_in(page, live_server, officer, "/cases")
    row = page.get_by_role("row", name=case.reference)
    assert "Pothole" in row.text_content() and "In progress" in row.text_content()
    assert "in_progress" not in row.text_content() and str(case.sla_due_at.year) in row.text_content()
    assert_accessible(page, checked)
    page.get_by_role("link", name=case.reference).click()
    page.wait_for_url(f"{live_server}/cases/{case.reference}")

    # Both photos show as thumbnails that really loaded, each with a download.
    thumbs = page.locator(".attachment-grid img.thumb")
    assert thumbs.count() == 2
    for i in range(2):
        thumbs.nth(i).scroll_into_view_if_needed()
        expect(thumbs.nth(i)).to_have_js_property("complete", True)
        assert 0 < thumbs.nth(i).evaluate("img => img.naturalWidth") <= 320
    with page.expect_download() as download:
        page.get_by_role("link", name="Download pothole.jpg").click()
    assert download.value.suggested_filename == "pothole.jpg"

    # Human words and dates with their year, never stored codes.
    facts = page.locator("dl.facts").text_content()
    assert "Pothole" in facts and "In progress" in facts and "in_progress" not in facts
    assert str(case.created_at.year) in facts
    history = page.locator("#history-heading + ol").text_content()
    assert "New → In progress" in history and "in_progress" not in history
    assert_accessible(page, checked)

    # The public update is checked first; nothing reaches the resident until it is confirmed.
    page.get_by_label("Public update (the resident sees this and is emailed)").fill("The crew comes on Tuesday.")
    page.get_by_role("button", name="Check update before publishing").click()
    confirm = page.locator("#confirm-update")
    confirm.wait_for()
    assert "Publish this update to Jane Resident?" in confirm.inner_text()
    assert smtp_sink.to("jane@example.org") == []
    assert_accessible(page, checked)
    confirm.get_by_role("button", name="Publish to the resident").click()
    page.wait_for_selector("text=Update posted to the resident.")
    assert len(smtp_sink.to("jane@example.org")) == 1

    # The internal note is plainly staff only, and is never emailed.
    page.get_by_label("Internal note (staff only, never shown to the resident)").fill("Crew overbooked")
    page.get_by_role("button", name="Add internal note").click()
    page.wait_for_selector("text=Note added.")
    assert len(smtp_sink.to("jane@example.org")) == 1

    # Resolving needs a reason, which the resident is told.
    page.get_by_label("Move to").select_option("resolved")
    page.get_by_role("button", name="Change status").click()
    page.wait_for_selector("text=Say how the case was resolved")
    assert_accessible(page, checked)
    page.get_by_label("Move to").select_option("resolved")
    page.get_by_label("Reason").fill("We filled the pothole on Tuesday.")
    page.get_by_role("button", name="Change status").click()
    page.wait_for_selector("text=Status changed.")
    [_, resolved_mail] = smtp_sink.to("jane@example.org")
    assert "resolved" in resolved_mail["Subject"]
    assert "We filled the pothole on Tuesday." in resolved_mail.get_body(("plain",)).get_content()

    # The resident types the reference as people do and reads the reason on /track.
    resident = chromium.new_context().new_page()
    try:
        resident.goto(f"{live_server}/track")
        resident.get_by_label("Reference").fill(f" cas {int(case.reference[4:])} ")
        resident.get_by_label("Email address or phone number").fill("jane@example.org")
        resident.get_by_role("button", name="Find my report").click()
        resident.wait_for_url(f"{live_server}/track/{case.reference}")
        body = resident.locator("main").inner_text()
        assert "We filled the pothole on Tuesday." in body and "Crew overbooked" not in body
        assert_accessible(resident, checked)
    finally:
        resident.context.close()
