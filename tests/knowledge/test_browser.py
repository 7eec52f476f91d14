"""Self-service in real Chromium over real HTTP: a resident is answered by a suggestion as they type and
leaves without a contact; an agent sees guidance for the reason they picked and records what they used;
every new page passes axe-core."""
import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import ArticleUse, Contact, FormDefinition, SelfServiceEvent
from tests import factories
from tests.conftest import PASSWORD
from tests.portal.test_browser import assert_accessible

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def _sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the browser walks once; the database paths are covered on both backends")


@pytest.fixture
def pothole_form(services):
    form = FormDefinition(slug="report-a-pothole", title="Report a pothole", service_id=services["highways"].id,
                          category_code="pothole", published=True,
                          fields=[{"name": "details", "label": "Describe the problem", "type": "textarea",
                                   "required": True}])
    db.session.add(form)
    db.session.commit()
    return form


def test_a_resident_is_answered_by_a_suggestion_and_no_contact_is_raised(live_server, page, fixed_articles,
                                                                        pothole_form):
    checked = []
    page.goto(f"{live_server}/forms/report-a-pothole")
    page.get_by_label("Describe the problem").fill("There is a deep pothole in the wheel track on my road")
    suggestion = page.locator(".help-suggestions__live").get_by_role("link", name="How we repair potholes")
    suggestion.wait_for()
    assert_accessible(page, checked)
    page.locator(".help-suggestions__live").get_by_role("button", name="This answered my question").first.click()
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
