"""The chat console says, before the history, when the chatting resident's record is only claimed."""
import pytest

from crm.extensions import db
from tests import factories
from tests.conftest import PASSWORD
from tests.webchat.test_browser import chat_server, council_site  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def _console(page, chat_server, agent):  # noqa: F811
    page.goto(chat_server.url + "/login")
    page.get_by_label("Email").fill(agent.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(chat_server.url + "/agent/chats")
    page.get_by_text("Connected").wait_for()


def test_a_chat_matched_only_by_claimed_details_is_flagged_before_the_timeline(chat_server, page, clients,  # noqa: F811
                                                                               make_user):
    from crm.customers.identity import create_customer

    create_customer("Jane Doe", "jane@example.org", None, source="email")  # claimed: an email's From
    create_customer("Vera Verified", "vera@example.org", None, source="portal", verified=True)
    db.session.commit()
    _console(page, chat_server, make_user("agent", name="Console Agent"))
    resident = clients(chat_server.url, "/webchat")
    resident.call("start", {"name": "Jane Doe", "email": "jane@example.org", "message": "About my bin"})
    panel = page.locator("article.chat-panel").filter(has_text="About my bin")
    panel.get_by_text("About my bin").wait_for()
    warning = panel.locator(".chat-unverified")
    warning.wait_for(state="visible")
    box, timeline = warning.bounding_box(), panel.locator(".chat-timeline").bounding_box()
    assert box["y"] < timeline["y"]  # said before the history

    other = clients(chat_server.url, "/webchat")
    other.call("start", {"name": "Vera Verified", "email": "vera@example.org", "message": "Hello from Vera"})
    vera = page.locator("article.chat-panel").filter(has_text="Hello from Vera")
    vera.get_by_text("Hello from Vera").wait_for()
    vera.locator(".chat-customer-link").filter(has_text="Vera Verified").wait_for()
    vera.locator(".chat-customer[data-identity=verified]").wait_for(state="attached")
    assert vera.locator(".chat-unverified").is_hidden()
