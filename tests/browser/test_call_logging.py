"""An agent logs a call in real Chromium: nothing is chosen for them, a mistake keeps the call time
running, reasons come grouped by service, and a case is placed at the caller's address (with the
map position the database already knows for that postcode) instead of typed coordinates."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.extensions import db
from crm.models import Case, Contact
from tests import factories
from tests.browser.axe import assert_accessible
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser walk is enough; the database paths are covered on both backends")


def test_a_call_needs_a_reason_and_outcome_and_a_mistake_keeps_the_timer(app, live_server, page, make_user):
    factories.service(code="waste", name="Waste", categories=(("missed_bin", "Missed bin collection"),))
    factories.service(code="highways", name="Highways", categories=(("pothole", "Pothole"),))
    agent = make_user("agent", name="Bethany Agent")
    jane = factories.customer("Jane Armstrong", phone="07700 900123",
                              address={"line1": "1 Fell View", "town": "Keswick", "postcode": "CA12 4NR"})
    neighbour = factories.customer("Sam Neighbour")
    earlier = factories.case(neighbour, title="Pothole by number 3", location_address="3 Fell View, Keswick CA12 4NR",
                             latitude=54.6012, longitude=-3.1345)
    checked = []

    page.goto(f"{live_server}/customers/{jane.id}")
    page.get_by_label("Email address").fill(agent.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/customers/{jane.id}")

    # Nothing is pre-chosen, and the reasons are grouped by the service that owns them.
    reason, outcome = page.get_by_label("Reason for call"), page.get_by_label("Outcome")
    assert reason.input_value() == "" and outcome.input_value() == ""
    groups = reason.evaluate("s => [...s.querySelectorAll('optgroup')].map(g => g.label)")
    assert groups == ["Highways", "Waste"]
    assert reason.locator("optgroup[label=Waste] option").first.get_attribute("value") == "missed_bin"

    # Send it unchanged after the clock has moved: refused, the notes kept, the call time not reset.
    page.get_by_label("Notes").fill("Asked about the bin round")
    expect(page.locator("#call-timer")).not_to_have_text("00:00")
    started = page.locator("input[name=started_at]").input_value()
    page.get_by_role("button", name="Log call").click()
    summary = page.locator(".error-summary")
    summary.wait_for()
    assert "Choose the reason for the call" in summary.inner_text()
    assert "Choose the outcome of the call" in summary.inner_text()
    assert page.get_by_label("Notes").input_value() == "Asked about the bin round"
    assert page.locator("input[name=started_at]").input_value() == started
    assert page.locator("#call-timer").inner_text() != "00:00"
    assert_accessible(page, checked)
    db.session.expire_all()
    assert db.session.scalar(select(Contact).where(Contact.customer_id == jane.id)) is None

    page.get_by_label("Reason for call").select_option("missed_bin")
    page.get_by_label("Outcome").select_option("signposted")
    page.get_by_role("button", name="Log call").click()
    page.wait_for_selector("text=Call logged.")
    db.session.expire_all()
    contact = db.session.scalar(select(Contact).where(Contact.customer_id == jane.id))
    assert contact.outcome == "signposted" and contact.handle_seconds >= 1
    assert contact.started_at.isoformat().startswith(started[:19])

    # Raising a case: the caller's address is offered; no coordinates to type.
    page.get_by_role("link", name="Raise a case").click()
    page.wait_for_url(f"{live_server}/customers/{jane.id}/cases/new")
    assert page.get_by_label("The caller's address: 1 Fell View, Keswick, CA12 4NR").is_checked()
    assert not page.get_by_label("Latitude").is_visible()
    assert_accessible(page, checked)
    page.get_by_label("Category").select_option("pothole")
    page.get_by_label("Title").fill("Pothole outside number 1")
    page.get_by_role("button", name="Raise case").click()
    # The postcode's earlier report gave the position, so that open case is offered first.
    page.get_by_role("heading", name="Is it one of these open cases?").wait_for()
    assert earlier.reference in page.locator(".panel").inner_text()
    assert_accessible(page, checked)
    page.get_by_label("None of these is the same problem: raise a new case").check()
    page.get_by_role("button", name="Raise case").click()
    page.wait_for_selector("text=raised with Highways")
    db.session.expire_all()
    raised = db.session.scalar(select(Case).where(Case.customer_id == jane.id))
    assert raised.location_address == "1 Fell View, Keswick, CA12 4NR"
    assert abs(raised.latitude - 54.6012) < 1e-6 and abs(raised.longitude + 3.1345) < 1e-6
