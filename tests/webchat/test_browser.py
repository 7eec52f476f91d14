"""The real socket.io JS client in Debian's Chromium: the resident page, the widget, the agent console."""
import pytest

from tests.conftest import PASSWORD
from tests.webchat.conftest import agent_with_token

pytestmark = pytest.mark.browser


@pytest.fixture
def council_site():
    """A council web page on another origin (a real loopback server: Chromium blocks public
    pages from loopback), whose HTML the test sets."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    page_html = {"body": b""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(page_html["body"])

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://localhost:{httpd.server_port}", page_html
    httpd.shutdown()


@pytest.fixture
def chat_server(app, server_factory, council_site):
    return server_factory(WEBCHAT_ALLOWED_ORIGINS=council_site[0])


def axe_violations(page):
    """Run axe-core from our own origin (the CSP allows only same-origin scripts, never inline ones)."""
    from urllib.parse import urlsplit

    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    page.add_script_tag(url=origin + "/static/vendor/axe.min.js")
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], [(n["target"], n["failureSummary"]) for n in v["nodes"]])
            for v in result["violations"]]


def log_texts(page):
    return page.locator("#chat-log li .body").all_inner_texts()


def test_resident_chats_with_an_agent_reloads_and_sees_each_message_once(chat_server, page, clients,
                                                                         make_user, api_token):
    _, token = agent_with_token(make_user, api_token, name="Bethany Agent")
    agent_client = clients(chat_server.url, "/agent", auth={"token": token})
    page.goto(chat_server.url + "/chat")
    assert axe_violations(page) == []
    page.get_by_label("Your name").fill("Jane Resident")
    page.get_by_label("Email address (optional)").fill("jane@example.org")
    page.get_by_role("button", name="Start chat").click()
    page.get_by_text("You are chatting with Bethany Agent.").wait_for()
    assigned = agent_client.expect("assigned")

    page.get_by_label("Type your message").fill("My bin was missed")
    page.keyboard.press("Enter")
    got = agent_client.expect("message")
    assert got["body"] == "My bin was missed"
    reply = agent_client.call("message", {"conversation_id": assigned["conversation_id"], "client_id": "b1",
                                          "body": "<img src=x onerror=alert(1)> sorry about that"})
    page.locator("#chat-log li").filter(has_text="sorry about that").wait_for()
    assert page.locator("#chat-log img").count() == 0  # shown as text, never as HTML
    agent_client.call("typing", {"conversation_id": assigned["conversation_id"], "typing": True})
    page.get_by_text("The adviser is typing…").wait_for()

    page.reload()
    page.locator("#chat-log li").filter(has_text="sorry about that").wait_for()
    page.wait_for_function("document.querySelectorAll('#chat-log li').length >= 2")
    assert log_texts(page) == ["My bin was missed", "<img src=x onerror=alert(1)> sorry about that"]
    # Typed after the reload: the resumed socket still talks to the same chat.
    page.get_by_label("Type your message").fill("Thanks")
    page.get_by_role("button", name="Send").click()
    assert agent_client.expect("message")["body"] == "Thanks"
    assert reply["seq"] < agent_client.call("history", {"conversation_id": assigned["conversation_id"],
                                                         "after_seq": 0})["messages"][-1]["seq"]
    page.get_by_role("button", name="End chat").click()
    page.get_by_text("How satisfied were you with this chat?").wait_for()
    assert axe_violations(page) == []


def test_widget_on_a_council_page_opens_the_chat_from_our_origin(chat_server, council_site, page):
    site, page_html = council_site
    page_html["body"] = (f"<!doctype html><html lang='en'><head><title>Council</title></head><body><main><h1>Bins"
                         f"</h1></main><script src='{chat_server.url}/chat/widget.js' async></script></body></html>").encode()
    page.goto(site + "/")
    page.get_by_role("button", name="Chat with us").click()
    frame = page.frame_locator("iframe[title='Chat with the council']")
    frame.get_by_label("Your name").fill("Widget User")
    frame.get_by_role("button", name="Start chat").click()
    frame.get_by_text("You are number 1 in the queue.", exact=False).wait_for()
    assert page.get_by_role("button", name="Hide chat").get_attribute("aria-expanded") == "true"


def test_chat_page_may_be_framed_only_by_configured_origins(chat_server, council_site):
    import requests

    response = requests.get(chat_server.url + "/chat?embed=1", timeout=5)
    directives = [d.strip() for d in response.headers["Content-Security-Policy"].split(";")]
    assert f"frame-ancestors 'self' {council_site[0]}" in directives
    assert "X-Frame-Options" not in response.headers


def test_agent_console_takes_a_chat_and_replies(chat_server, page, clients, make_user):
    agent = make_user("agent", name="Console Agent")
    page.goto(chat_server.url + "/login")
    page.get_by_label("Email").fill(agent.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(chat_server.url + "/agent/chats")
    page.get_by_text("Connected").wait_for()
    resident = clients(chat_server.url, "/webchat")
    started = resident.call("start", {"name": "Console Caller", "message": "Hello console"})
    panel = page.locator("article.chat-panel")
    panel.get_by_text("Hello console").wait_for()
    resident.call("typing", {"typing": True})
    panel.get_by_text("Resident is typing…").wait_for()
    panel.get_by_role("textbox", name="Reply").fill("Hello from the console")
    panel.get_by_role("button", name="Send").click()
    assert resident.expect("message", lambda d: d["author"] == "agent")["body"] == "Hello from the console"
    panel.get_by_label("Outcome").select_option("signposted")
    panel.get_by_role("button", name="Close chat").click()
    assert resident.expect("status", lambda d: d["state"] == "ended")["conversation_id"] == started["conversation_id"]
    page.get_by_text("You have no chats open.", exact=False).wait_for()
