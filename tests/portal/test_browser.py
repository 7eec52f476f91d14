"""Residents in real Chromium over real HTTP: a form end to end, every resident page through axe-core,
a phone-sized screen, and a long form with JavaScript switched off."""
import os
import re

import pytest
from sqlalchemy import select

from crm.cases.service import change_status, post_public_update
from crm.extensions import db
from crm.portal import council_time
from crm.models import Attachment, Case
from tests import factories
from tests.portal.conftest import jpeg_with_gps

pytestmark = pytest.mark.browser

AXE = os.path.join(os.path.dirname(__file__), "..", "..", "static", "vendor", "axe.min.js")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@pytest.fixture(autouse=True)
def _sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the browser walks once; the database paths are covered on both backends")


def axe_problems(page) -> list:
    """Run axe-core in the page; return its serious and critical WCAG 2.2 AA violations."""
    page.add_script_tag(path=AXE)
    result = page.evaluate("""async (tags) => {
        const found = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
        return found.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}));
    }""", WCAG_TAGS)
    return [v for v in result if v["impact"] in ("serious", "critical")]


def assert_accessible(page, checked: list):
    problems = axe_problems(page)
    assert problems == [], f"{page.url}: {problems}"
    checked.append(page.url)


def fits_320(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_a_resident_reports_a_pothole_with_a_photo_through_the_error_path(live_server, page, pothole_form, tmp_path):
    photo = tmp_path / "pothole.jpg"
    photo.write_bytes(jpeg_with_gps())
    checked = []
    page.goto(f"{live_server}/forms/")
    assert_accessible(page, checked)
    page.get_by_role("link", name="Report a pothole").click()
    page.wait_for_url(f"{live_server}/forms/report-a-pothole")
    assert_accessible(page, checked)

    # Send it half filled: the error summary lists what is missing and what was typed stays.
    page.get_by_label("Anything else?").fill("Deep enough to burst a tyre")
    page.get_by_role("button", name="Send").click()
    summary = page.locator(".govuk-error-summary")
    summary.wait_for()
    assert "Enter where the pothole is" in summary.inner_text()
    assert page.title().startswith("Error: ")
    assert page.get_by_label("Anything else?").input_value() == "Deep enough to burst a tyre"
    assert_accessible(page, checked)
    summary.get_by_role("link", name="Enter where the pothole is").click()
    assert page.evaluate("document.activeElement.id") == "location"

    page.get_by_label("Where is the pothole?").fill("Outside 12 Main Street")
    page.get_by_label("Larger than a dinner plate").check()
    page.get_by_label("A bus stop").check()
    page.get_by_label("Day").fill("3")
    page.get_by_label("Month").fill("11")
    page.get_by_label("Year").fill("2026")
    page.get_by_label("What kind of road?").select_option("Side street")
    page.get_by_label("Add a photo").set_input_files(str(photo))
    page.get_by_label("Full name").fill("Jane Resident")
    page.get_by_label("Email address").fill("jane@example.org")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r".*/forms/report-a-pothole/confirmation$"))
    reference = page.locator("#case-reference").inner_text()
    assert re.fullmatch(r"CAS-\d{6}", reference)
    assert_accessible(page, checked)

    db.session.expire_all()
    case = db.session.scalar(select(Case).where(Case.reference == reference))
    assert case.location_address == "Outside 12 Main Street" and "Side street" in case.description
    attachment = db.session.scalar(select(Attachment).where(Attachment.case_id == case.id))
    assert attachment.content_type == "image/jpeg" and b"PhoneMaker" in attachment.data
    assert case.latitude is None  # the photo's location was stripped: the box was not ticked

    # Track it with the reference and the email, at phone width.
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(f"{live_server}/track")
    assert fits_320(page)
    assert_accessible(page, checked)
    page.get_by_label("Reference").fill(reference)
    page.get_by_label("Email address or phone number").fill("JANE@example.org")
    page.get_by_role("button", name="Find my report").click()
    page.wait_for_url(f"{live_server}/track/{reference}")
    assert page.locator("#case-status").inner_text() == "New"
    assert fits_320(page)
    assert_accessible(page, checked)
    assert len(checked) == 6


def test_every_other_resident_page_passes_axe(live_server, page, smtp, light_form, pothole_form):
    checked = []
    resident = factories.customer(name="Pat Resident", email="pat@example.org")
    case = factories.case(resident, service_code="highways", category="pothole", title="Pothole on Fell View")
    for status in ("open", "in_progress", "resolved"):
        change_status(case, status)
    post_public_update(case, "Filled on Tuesday.")
    db.session.commit()

    # A one-question-a-page form: start, a question with an error, your details, check answers.
    page.goto(f"{live_server}/forms/street-light")
    assert_accessible(page, checked)
    page.get_by_role("button", name="Start now").click()
    page.wait_for_url(f"{live_server}/forms/street-light/location")
    page.get_by_role("button", name="Continue").click()
    page.locator(".govuk-error-summary").wait_for()
    assert_accessible(page, checked)
    page.get_by_label("Where is the street light?").fill("Lamp 7, Fell View")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Flickering").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server}/forms/street-light/photo")
    assert_accessible(page, checked)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server}/forms/street-light/your-details")
    assert_accessible(page, checked)
    page.get_by_label("Full name").fill("Pat Resident")
    page.get_by_label("Email address").fill("pat@example.org")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server}/forms/street-light/check-answers")
    assert_accessible(page, checked)

    # /track: not found, then the resolved case with its "this is not fixed" form.
    page.goto(f"{live_server}/track")
    page.get_by_label("Reference").fill(case.reference)
    page.get_by_label("Email address or phone number").fill("someone.else@example.org")
    page.get_by_role("button", name="Find my report").click()
    page.get_by_text("We could not find a report").wait_for()
    assert_accessible(page, checked)
    page.get_by_label("Email address or phone number").fill("pat@example.org")
    page.get_by_role("button", name="Find my report").click()
    page.wait_for_url(f"{live_server}/track/{case.reference}")
    assert "Filled on Tuesday." in page.content()
    assert_accessible(page, checked)
    page.get_by_role("button", name="This is not fixed").click()
    page.locator(".govuk-error-summary").wait_for()
    assert_accessible(page, checked)
    page.get_by_label("What is still wrong?").fill("The hole is back after the rain")
    page.get_by_role("button", name="This is not fixed").click()
    page.locator(".govuk-notification-banner").wait_for()
    assert page.locator("#case-status").inner_text() == "Open"
    assert_accessible(page, checked)

    # /account: sign in page, sign up, check email, the link page, home, one case, preferences.
    page.goto(f"{live_server}/account")
    assert_accessible(page, checked)
    page.get_by_role("link", name="Create one").click()
    page.wait_for_url(f"{live_server}/account/sign-up")
    assert_accessible(page, checked)
    page.get_by_label("Full name").fill("Pat Resident")
    page.get_by_label("Email address").fill("pat@example.org")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Check your email").wait_for()
    assert_accessible(page, checked)
    link = smtp.link(smtp.wait_for(1)[-1])
    page.goto(link)
    assert_accessible(page, checked)
    page.get_by_role("button", name="Continue to your account").click()
    page.wait_for_url(f"{live_server}/account")
    assert case.reference in page.content()
    assert_accessible(page, checked)
    page.get_by_role("link", name=case.reference).click()
    page.wait_for_url(f"{live_server}/account/cases/{case.reference}")
    assert_accessible(page, checked)
    page.goto(f"{live_server}/account/preferences")
    assert_accessible(page, checked)
    page.get_by_label("Letter").check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{live_server}/account")

    page.goto(f"{live_server}/forms/no-such-form")
    assert_accessible(page, checked)
    page.set_viewport_size({"width": 320, "height": 640})
    for path in ("/forms/", "/forms/report-a-pothole", "/account", f"/account/cases/{case.reference}"):
        page.goto(live_server + path)
        assert fits_320(page), path
    assert len(checked) == 17


def test_a_long_form_works_with_javascript_switched_off(live_server, chromium, light_form):
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/forms/street-light")
        page.get_by_role("button", name="Start now").click()
        page.get_by_label("Where is the street light?").fill("Lamp 3, Church Lane")
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("Not working at all").check()
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("Full name").fill("Sam Walker")
        page.get_by_label("Phone number (optional if you gave an email)").fill("07700 900123")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("link", name="Change what is wrong with it?").click()
        page.get_by_label("Flickering").check()
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(f"{live_server}/forms/street-light/check-answers")
        page.get_by_role("button", name="Accept and send").click()
        reference = page.locator("#case-reference").inner_text()
    finally:
        context.close()
    db.session.expire_all()
    case = db.session.scalar(select(Case).where(Case.reference == reference))
    assert "Flickering" in case.description and case.customer.primary_phone == "+447700900123"


def test_one_council_name_everywhere_and_the_confirmation_says_when_to_expect_an_answer(
        app, live_server, page, pothole_form):
    app.config["COUNCIL_NAME"] = "Eden District Council"
    checked = []
    page.goto(f"{live_server}/forms/")
    names = {page.locator(".council-header__name").inner_text()}
    assert page.title().endswith("– Eden District Council")
    page.get_by_role("link", name="Report a pothole").click()
    page.get_by_label("Where is the pothole?").fill("Outside 12 Main Street")
    page.get_by_label("Larger than a dinner plate").check()
    page.get_by_label("Full name").fill("Jane Resident")
    page.get_by_label("Email address").fill("jane@example.org")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r".*/forms/report-a-pothole/confirmation$"))
    names.add(page.locator(".council-header__name").inner_text())
    reference = page.locator("#case-reference").inner_text()

    # When to expect an answer comes from the case's own targets, with the weekday and year.
    db.session.expire_all()
    case = db.session.scalar(select(Case).where(Case.reference == reference))
    expected = page.locator("#expected").inner_text()
    assert council_time(case.first_response_due_at, "%A %-d %B %Y") in expected
    assert council_time(case.sla_due_at, "%A %-d %B %Y") in expected
    assert_accessible(page, checked)

    # /track takes the reference the way people type it.
    page.goto(f"{live_server}/track")
    names.add(page.locator(".council-header__name").inner_text())
    page.get_by_label("Reference").fill(f"  {reference.lower().replace('-', ' ').replace(' 0000', ' ')}  ")
    page.get_by_label("Email address or phone number").fill("jane@example.org")
    page.get_by_role("button", name="Find my report").click()
    page.wait_for_url(f"{live_server}/track/{reference}")
    names.add(page.locator(".council-header__name").inner_text())
    assert page.title().endswith("– Eden District Council")

    for path in ("/chat", "/no-such-page"):
        page.goto(f"{live_server}{path}")
        names.add(page.locator(".council-header__name").first.inner_text())
    assert names == {"Eden District Council"}
