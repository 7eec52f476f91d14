"""Self-service in real Chromium over real HTTP: a resident is answered by a suggestion as they type and
leaves without a contact; an agent sees guidance for the reason they picked and records what they used;
every new page passes axe-core."""
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import ArticleUse, Contact, SelfServiceEvent
from tests import factories
from tests.conftest import PASSWORD
from tests.portal.test_browser import assert_accessible

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the browser walks once; the database paths are covered on both backends")


def test_a_resident_is_answered_by_a_suggestion_and_no_contact_is_raised(live_server, page, fixed_articles,
                                                                        pothole_form):
    checked = []
    page.goto(f"{live_server}/forms/report-a-pothole")
    page.get_by_label("Describe the problem").fill("There is a deep pothole in the wheel track on my road")
    suggestion = page.locator(".help-suggestions__live").get_by_role("link", name="How we repair potholes")
    suggestion.wait_for()
    assert_accessible(page, checked)
    # The thanks show at once; the count is stored when the POST returns, so wait for it.
    with page.expect_response(lambda response: "/help/answered" in response.url) as answered:
        page.locator(".help-suggestions__live").get_by_role("button", name="This answered my question").first.click()
    assert answered.value.ok
    page.get_by_text("Glad we could help").wait_for()
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(SelfServiceEvent).where(
        SelfServiceEvent.surface == "form", SelfServiceEvent.kind == "deflected")) == 1
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 0

    for path in ("/help/", "/help/search?q=pothole", "/help/how-we-repair-potholes", "/help/search?q=zzzz"):
        page.goto(live_server + path)
        assert_accessible(page, checked)
    page.get_by_label("Search help").fill("garden")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Garden waste subscription").click()
    page.get_by_label("Yes").check()
    page.get_by_role("button", name="Send feedback").click()
    page.get_by_text("Thank you for your feedback").wait_for()
    assert_accessible(page, checked)


def test_an_agent_gets_guidance_for_the_reason_and_records_what_was_used(live_server, page, fixed_articles,
                                                                        make_user):
    agent = make_user("agent", name="Bethany Agent")
    caller = factories.customer("Jane Armstrong", phone="07700 900123")
    db.session.commit()
    page.goto(f"{live_server}/login")
    page.get_by_label("Email address").fill(agent.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server}/console")
    page.goto(f"{live_server}/customers/{caller.id}")
    page.get_by_label("Reason for call").select_option("missed_bin")
    guidance = page.locator(".guidance")
    guidance.get_by_role("link", name="Call script: missed bin").wait_for()
    assert guidance.get_by_text("Staff guidance").first.is_visible()
    item = guidance.locator(".guidance__item", has_text="What to do if your bin was not emptied")
    item.get_by_label("Used with this caller").check()
    page.get_by_label("Notes").fill("Told them the crew returns within 2 working days")
    page.get_by_label("Outcome").select_option("signposted")
    page.get_by_role("button", name="Log call").click()
    page.wait_for_selector("text=Call logged.")
    db.session.expire_all()
    contact = db.session.scalar(select(Contact).where(Contact.customer_id == caller.id))
    use = db.session.scalar(select(ArticleUse))
    assert use.contact_id == contact.id
    assert use.article_id == fixed_articles["What to do if your bin was not emptied"].id
    checked = []
    page.goto(f"{live_server}/knowledge/")
    assert_accessible(page, checked)
    page.goto(f"{live_server}/knowledge/{use.article_id}")
    assert_accessible(page, checked)


def _sign_in(page, live_server, user):
    page.goto(f"{live_server}/login")
    page.get_by_label("Email address").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")


def test_an_editor_publishes_and_a_supervisor_posts_a_notice_that_residents_see(live_server, page, services,
                                                                              editor, supervisor):
    checked = []
    _sign_in(page, live_server, editor)
    page.wait_for_url(f"{live_server}/knowledge/")             # editors start at the knowledge base
    page.get_by_role("link", name="New article").click()
    assert_accessible(page, checked)
    page.get_by_label("Title").fill("Bulky waste collections")
    page.get_by_label("Summary").fill("Up to three large items collected for a fee.")
    page.get_by_label("Body").fill("## Prices\n\n- Up to 3 items: £25\n- Fridges: £30")
    page.get_by_label("Service").select_option("waste")
    page.get_by_label("Status").select_option("published")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("saved (published)").wait_for()
    assert_accessible(page, checked)
    page.goto(f"{live_server}/help/bulky-waste-collections")
    assert page.get_by_role("heading", name="Prices").is_visible()

    page.context.clear_cookies()
    _sign_in(page, live_server, supervisor)
    page.wait_for_url(f"{live_server}/console")
    page.goto(f"{live_server}/knowledge/notices")
    page.get_by_label("Service").select_option("waste")
    page.get_by_label("Notice").fill("Bulky waste collections are paused until Monday")
    page.get_by_label("Ends (council time)").fill((date.today() + timedelta(days=3)).isoformat())
    page.get_by_role("button", name="Post notice").click()
    page.get_by_text("Notice posted for Waste and Recycling").wait_for()
    assert_accessible(page, checked)
    page.goto(f"{live_server}/help/bulky-waste-collections")
    assert page.get_by_text("Bulky waste collections are paused until Monday").is_visible()
