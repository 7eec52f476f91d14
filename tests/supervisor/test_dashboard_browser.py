"""The dashboard in real Chromium: it goes live, updates on a push without reloading, and passes axe."""
import pytest
import requests

from tests import factories
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def serious(page, base):
    """Run axe-core, loaded from our own origin (the CSP refuses inline scripts), and list serious findings."""
    page.add_script_tag(url=base + "/static/vendor/axe.min.js")
    result = page.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})")
    return [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")]


def until(page, expression, timeout=15):
    """Wait until a JavaScript expression is true in the page (polled from here: the CSP forbids eval)."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.1)


def sign_in(page, base, user):
    page.goto(f"{base}/login")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/console")


def test_dashboard_updates_live_when_a_call_is_logged(app, make_user, agent, agent_headers, live_crm, page,
                                                      database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser walk is enough; the push path is covered on both backends")
    supervisor = make_user("supervisor", name="Siobhan Supervisor")
    page.goto(f"{live_crm.url}/login")
    page.get_by_label("Email address").fill(supervisor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_crm.url}/console")
    page.goto(f"{live_crm.url}/supervisor/")
    until(page, "document.getElementById('live-status').textContent.startsWith('Live')")
    row = page.locator(f'#agent-table tr[data-agent="{agent.id}"] [data-key="contacts_today"]')
    assert row.text_content() == "0"

    response = requests.post(f"{live_crm.url}/api/v1/contacts", headers=agent_headers, timeout=10, json={
        "channel": "phone", "caller": {"name": "Pat Caller", "phone": "01228 000001"},
        "outcome": "resolved_first_time"})
    assert response.status_code == 201
    until(page, 
        f"document.querySelector('#agent-table tr[data-agent=\"{agent.id}\"] [data-key=\"contacts_today\"]')"
        ".textContent === '1'")

    assert serious(page, live_crm.url) == []


def test_reports_page_draws_charts_over_its_tables(app, make_user, live_crm, page, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser walk is enough")
    supervisor = make_user("supervisor")
    customer = factories.customer("Rita Resident", phone="07700 900555")
    from crm.customers.timeline import record_contact
    from crm.extensions import db

    record_contact(customer, "web_form", outcome="case_raised")
    db.session.commit()
    page.goto(f"{live_crm.url}/login")
    page.get_by_label("Email address").fill(supervisor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_crm.url}/console")
    page.goto(f"{live_crm.url}/supervisor/reports")
    # Chart.js loaded from our own static files and drew on both canvases.
    assert page.evaluate("typeof Chart") == "function"
    assert page.evaluate("Chart.getChart('chart-periods').data.datasets.length") >= 1
    assert page.evaluate("Chart.getChart('chart-shift').data.labels.length") >= 1
    assert page.locator("#table-channels").get_by_text("web_form").is_visible()
    assert serious(page, live_crm.url) == []


def test_waits_of_days_show_in_days_and_an_empty_queue_stays_at_zero(app, make_user, live_crm, page, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser walk is enough")
    from datetime import timedelta

    from crm.extensions import db
    from crm.models import ChatSession, Conversation, Queue, utcnow

    chat_queue = Queue(code="webchat", name="Webchat", channel="webchat")
    email_queue = Queue(code="email", name="Email", channel="email", target_response_minutes=60)
    db.session.add_all([chat_queue, email_queue])
    db.session.flush()
    customer = factories.customer("Old Waiter")
    two_days_ago = utcnow() - timedelta(days=2, minutes=5)
    waiting = Conversation(customer_id=customer.id, channel="webchat", status="queued", queue_id=chat_queue.id,
                           token="t" * 20, created_at=two_days_ago)
    db.session.add(waiting)
    db.session.flush()
    db.session.add(ChatSession(conversation_id=waiting.id, name="Old Waiter", queued_at=two_days_ago))
    db.session.commit()
    sign_in(page, live_crm.url, make_user("supervisor"))
    page.goto(f"{live_crm.url}/supervisor/")
    chat_wait = page.locator('#queue-table tr[data-queue="webchat"] [data-key="oldest_wait_seconds"]')
    email_wait = page.locator('#queue-table tr[data-queue="email"] [data-key="oldest_wait_seconds"]')
    assert chat_wait.text_content() == "2 days 0 h"
    assert email_wait.text_content() == "0 s"
    page.wait_for_timeout(2500)  # the ticker runs every second between pushes
    assert chat_wait.text_content() == "2 days 0 h"
    assert email_wait.text_content() == "0 s"  # nothing waiting: no clock to tick, never below zero


def test_reports_page_fits_1440_pixels_and_shows_money_with_a_minus_sign(app, make_user, live_crm, chromium,
                                                                          database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("one browser walk is enough")
    from crm.customers.timeline import record_contact
    from crm.extensions import db

    customer = factories.customer("Fran Face", phone="07700 900556")
    record_contact(customer, "face_to_face", outcome="resolved_first_time")  # dearer than a call: a negative saving
    db.session.commit()
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, live_crm.url, make_user("supervisor"))
        page.goto(f"{live_crm.url}/supervisor/reports")
        saving = page.locator(".kpis li").filter(has_text="Saving against all-phone").locator("strong")
        assert saving.text_content() == "\u2212£5.79"
        assert page.evaluate("document.documentElement.scrollWidth") <= 1440
        boxes = page.evaluate("""[...document.querySelectorAll('.report-grid > section')].map(s => {
            const r = s.getBoundingClientRect();
            return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, spills: s.scrollWidth > s.clientWidth};
        })""")
        assert not any(b["spills"] for b in boxes)
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                overlap = a["left"] < b["right"] - 1 and b["left"] < a["right"] - 1 and \
                    a["top"] < b["bottom"] - 1 and b["top"] < a["bottom"] - 1
                assert not overlap, (a, b)
        assert serious(page, live_crm.url) == []
    finally:
        context.close()
