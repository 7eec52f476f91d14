"""The dashboard in real Chromium: it goes live, updates on a push without reloading, and passes axe."""
import pytest
import requests

from tests import factories
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


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
    page.wait_for_function("document.getElementById('live-status').textContent.startsWith('Live')")
    row = page.locator(f'#agent-table tr[data-agent="{agent.id}"] [data-key="contacts_today"]')
    assert row.text_content() == "0"

    response = requests.post(f"{live_crm.url}/api/v1/contacts", headers=agent_headers, timeout=10, json={
        "channel": "phone", "caller": {"name": "Pat Caller", "phone": "01228 000001"},
        "outcome": "resolved_first_time"})
    assert response.status_code == 201
    page.wait_for_function(
        f"document.querySelector('#agent-table tr[data-agent=\"{agent.id}\"] [data-key=\"contacts_today\"]')"
        ".textContent === '1'")

    page.add_script_tag(path="static/vendor/axe.min.js")
    result = page.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})")
    serious = [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []


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
    page.add_script_tag(path="static/vendor/axe.min.js")
    result = page.evaluate("axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})")
    serious = [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == []
