"""An agent signs in, finds a caller and logs a call, in real Chromium over real HTTP."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.extensions import db
from crm.models import Contact
from tests import factories
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_agent_signs_in_finds_a_caller_and_logs_a_call(app, live_server, page, make_user, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser walk is enough; the database paths are covered on both backends")
    factories.service(code="waste", name="Waste", categories=(("missed_bin", "Missed bin collection"),))
    agent = make_user("agent", name="Bethany Agent")
    jane = factories.customer("Jane Armstrong", phone="07700 900123",
                              address={"line1": "1 Fell View", "town": "Keswick", "postcode": "CA12 4NR"})

    page.goto(f"{live_server}/console")
    assert "/login" in page.url
    page.get_by_label("Email address").fill(agent.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/console")

    # The search box has focus on arrival (Chromium applies autofocus at the next frame, so wait for it,
    # as a person would see the cursor): type the phone number as the caller says it.
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("07700 900 123")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Jane Armstrong").click()
    page.wait_for_url(f"{live_server}/customers/{jane.id}")
    assert page.get_by_role("heading", name="Jane Armstrong").is_visible()

    page.get_by_label("Reason for call").select_option("missed_bin")
    page.get_by_label("Notes").fill("Bin missed on Tuesday; crew will return tomorrow.")
    page.get_by_label("Outcome").select_option("resolved_first_time")
    page.get_by_role("button", name="Stop timer").click()
    assert page.locator("#timer-toggle").get_attribute("data-state") == "stopped"
    page.get_by_role("button", name="Log call").click()
    page.wait_for_selector("text=Call logged.")
    assert page.locator(".timeline-list").get_by_text("Bin missed on Tuesday").is_visible()

    db.session.expire_all()
    contact = db.session.scalar(select(Contact).where(Contact.customer_id == jane.id))
    assert contact.channel == "phone" and contact.agent_id == agent.id
    assert contact.outcome == "resolved_first_time" and contact.handle_seconds is not None
