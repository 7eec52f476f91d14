"""The customer timeline in real Chromium: an agent sees that a restricted case exists, never what it says;
the supervisor who needs it reads it, and that read is audited."""
import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditLog
from tests.browser.axe import assert_accessible
from tests.conftest import PASSWORD
from tests.visibility_world import build_world

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser walk is enough; the database paths are covered on both backends")


def _sign_in(page, live_server, user, path):
    page.goto(f"{live_server}{path}")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}{path}")


def test_an_agent_sees_a_redacted_entry_and_a_supervisor_the_case(app, live_server, chromium):
    world = build_world()
    jane = world.customers["jane"]
    path = f"/customers/{jane.id}"

    agent_context = chromium.new_context(viewport={"width": 1366, "height": 768})
    page = agent_context.new_page()
    _sign_in(page, live_server, world.users["agent"], path)
    timeline = page.locator(".timeline-list")
    redacted = timeline.locator(".entry-redacted")
    assert redacted.count() >= 2  # the case's events and the email about it
    assert "Restricted case — Adult Social Care" in redacted.first.inner_text()
    text = page.locator("main").inner_text()
    assert "SECRET" not in text
    assert "Pothole on Main Street" in timeline.inner_text()  # ordinary entries stay readable
    assert page.locator("dd", has_text="flagged").count() == 1  # the vulnerability note exists, unread
    assert_accessible(page, [])
    agent_context.close()

    supervisor_context = chromium.new_context(viewport={"width": 1366, "height": 768})
    page = supervisor_context.new_page()
    _sign_in(page, live_server, world.users["supervisor"], path)
    timeline_text = page.locator(".timeline-list").inner_text()
    assert "SECRET-ASC-TITLE" in timeline_text and "SECRET-ASC-NOTE" in timeline_text
    assert page.locator(".timeline-list .entry-redacted").count() == 0
    assert page.get_by_text("Vulnerability and restriction").is_visible()
    supervisor_context.close()
    db.session.expire_all()
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "case.view_sensitive",
                                                    AuditLog.actor_id == world.users["supervisor"].id))
