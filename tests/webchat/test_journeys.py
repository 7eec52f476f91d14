"""Front-line journeys in real Chromium against real servers (issue 12): the pre-chat form, a supervisor's
move, an agent told about new work in a background tab, and a transcript that reaches a real mailbox."""
import re
import tempfile
import time

import pytest
import requests

from crm.extensions import db
from tests import factories
from tests.conftest import PASSWORD, REDIS_URL
from tests.support import WorkerProcess
from tests.webchat.conftest import WAIT, agent_with_token
from tests.webchat.test_browser import axe_violations

pytestmark = pytest.mark.browser

# Records every desktop notification the page constructs (the real one is still shown), and lets the
# test put the page in the background: headless Chromium keeps every tab visible and focused.
RECORD_NOTIFICATIONS = """
(() => {
  window.__background = false;
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => window.__background });
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true, get: () => (window.__background ? "hidden" : "visible") });
  const hasFocus = Document.prototype.hasFocus;
  Document.prototype.hasFocus = function () { return !window.__background && hasFocus.call(this); };
  window.__notes = [];
  const Real = window.Notification;
  if (!Real) return;
  class Recorded extends Real {
    constructor(title, options) { super(title, options); window.__notes.push(title); }
  }
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


def serious(page):
    return [v for v in axe_violations(page) if v[1] in ("serious", "critical")]


def sign_in(page, base, user):
    page.goto(base + "/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/console.*"))


def until(page, expression):
    """Wait until a JavaScript expression is true in the page (polled from here: the CSP forbids eval)."""
    wait_until(lambda: page.evaluate(expression), expression)


def wait_until(check, what):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_fresh_chat_form_shows_no_error_and_a_bad_one_links_each_error_to_its_field(server, page):
    page.goto(server.url + "/chat")
    # GOV.UK's display:block used to beat [hidden]: errors showed before anything was typed.
    assert page.locator(".govuk-error-message:visible").count() == 0
    assert page.locator(".govuk-error-summary:visible").count() == 0
    assert serious(page) == []

    page.get_by_label("Email address (optional)").fill("not-an-address")
    page.get_by_role("button", name="Start chat").click()
    summary = page.locator(".govuk-error-summary")
    summary.wait_for()
    assert page.title().startswith("Error: ")
    assert summary.get_by_role("link", name="Enter your name").get_attribute("href") == "#name"
    summary.get_by_role("link", name=re.compile("Enter an email address")).click()
    assert page.evaluate("document.activeElement.id") == "email"
    assert page.locator("#name-error").is_visible() and page.locator("#email-error").is_visible()
    assert page.locator("#phone-error").is_hidden()  # optional and empty: no error
    assert serious(page) == []

    # Optional fields left empty really are optional.
    page.get_by_label("Email address (optional)").fill("")
    page.get_by_label("Your name").fill("Olive Optional")
    page.get_by_role("button", name="Start chat").click()
    page.get_by_text("in the queue", exact=False).wait_for()
    assert page.locator(".govuk-error-summary:visible").count() == 0


def test_supervisor_moves_a_queued_chat_and_agent_and_resident_see_it_live(app, server, page, chromium, make_user):
    agent = make_user("agent", name="Mo Mover")
    agent.chat_capacity = 0  # takes nothing by itself: the chat waits until the supervisor moves it
    db.session.commit()
    boss = make_user("supervisor", name="Sid Supervisor")
    factories.customer("Lina Linked", phone="07700 900123")

    resident = page
    resident.goto(server.url + "/chat")
    resident.get_by_label("Your name").fill("Queued Quentin")
    resident.get_by_role("button", name="Start chat").click()
    resident.get_by_text("You are number 1 in the queue", exact=False).wait_for()

    agent_context = chromium.new_context(viewport={"width": 1366, "height": 768}, bypass_csp=True)
    supervisor_context = chromium.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=True)
    try:
        console = agent_context.new_page()
        console.set_default_timeout(WAIT * 1000)
        sign_in(console, server.url, agent)
        console.goto(server.url + "/agent/chats")
        console.get_by_text("Connected").wait_for()

        dashboard = supervisor_context.new_page()
        dashboard.set_default_timeout(WAIT * 1000)
        sign_in(dashboard, server.url, boss)
        dashboard.goto(server.url + "/supervisor/")
        until(dashboard, "document.getElementById('live-status').textContent.startsWith('Live')")
        option = dashboard.locator("#move-conversation option").filter(has_text="unassigned")
        assert option.count() == 1
        dashboard.get_by_label("Move to").select_option(label="Mo Mover")
        dashboard.get_by_role("button", name="Move", exact=True).click()
        dashboard.get_by_text("Conversation moved.").wait_for()
        assert "Traceback" not in dashboard.content()

        console.locator("article.chat-panel").get_by_role("heading", name="Queued Quentin").wait_for()
        resident.get_by_text("You are chatting with Mo Mover.").wait_for()
        assert console.title().startswith("(1) ")
        # "Link to customer" finds the right record by phone instead of asking for an id.
        panel = console.locator("article.chat-panel")
        panel.get_by_label("Find the customer", exact=False).fill("07700 900123")
        panel.get_by_role("button", name="Search").click()
        panel.get_by_role("button", name="Link this chat to Lina Linked").click()
        panel.get_by_text("Linked to Lina Linked.").wait_for()
        assert panel.locator(".chat-customer-link").text_content().startswith("Lina Linked")
        # The move list on the open dashboard follows without a reload.
        resident.get_by_role("button", name="End chat").click()
        until(dashboard, "[...document.querySelectorAll('#move-conversation option')].some(o => o.textContent.includes('ended'))")
        assert serious(dashboard) == []
        assert serious(console) == []
    finally:
        agent_context.close()
        supervisor_context.close()


def test_agent_in_a_background_tab_is_told_of_a_new_chat_a_message_and_a_transfer(app, server, chromium, clients,
                                                                                   make_user, api_token):
    agent = make_user("agent", name="Nia Notified")
    agent.chat_capacity = 3
    db.session.commit()
    colleague, colleague_token = agent_with_token(make_user, api_token, capacity=1, name="Col Colleague")
    context = chromium.new_context(viewport={"width": 1366, "height": 768}, bypass_csp=True)
    context.grant_permissions(["notifications"], origin=server.url)
    context.add_init_script(RECORD_NOTIFICATIONS)
    try:
        console = context.new_page()
        console.set_default_timeout(WAIT * 1000)
        sign_in(console, server.url, agent)
        console.goto(server.url + "/agent/chats")
        console.get_by_text("Connected").wait_for()
        assert console.get_by_label("Play a sound for new work").is_checked() is False  # off by default
        assert console.evaluate("Notification.permission") == "granted"
        assert serious(console) == []
        # The agent turns to another tab: the console is in the background.
        console.evaluate("window.__background = true; document.dispatchEvent(new Event('visibilitychange'))")

        resident = clients(server.url, "/webchat")
        resident.call("start", {"name": "Rhian Resident", "message": "Hello?"})
        until(console, "window.__notes.some(t => t.startsWith('New chat from Rhian Resident'))")
        assert console.title().startswith("(1) ")
        resident.expect("status", lambda s: s["state"] == "assigned")
        resident.call("message", {"client_id": "r-2", "body": "Are you there?"})
        until(console, "window.__notes.some(t => t.startsWith('New message from Rhian Resident'))")
        assert console.title().startswith("(2) ")
        assert console.locator("article.chat-panel .chat-unread").text_content() == "2 new"

        # A colleague hands over a chat they hold.
        colleague_client = clients(server.url, "/agent", auth={"token": colleague_token})
        other_resident = clients(server.url, "/webchat")
        handed = other_resident.call("start", {"name": "Tom Transferred", "message": "Bins"})
        # The least loaded agent (the colleague, with none) gets it.
        colleague_client.expect("assigned", lambda c: c["conversation_id"] == handed["conversation_id"])
        ack = colleague_client.call("transfer", {"conversation_id": handed["conversation_id"], "agent_id": agent.id})
        assert ack == {"ok": True}
        until(console, "window.__notes.some(t => t === 'Chat with Tom Transferred transferred to you')")
        assert console.title().startswith("(3) ")

        # A supervisor's banner reaches the open console without a reload.
        boss = make_user("supervisor", name="Bea Banner")
        posted = requests.post(server.url + "/api/v1/banners", headers=api_token(boss), timeout=10,
                               json={"message": "Bins not collected in Keswick today"})
        assert posted.status_code == 201, posted.text
        console.locator("#staff-banners").get_by_text("Bins not collected in Keswick today").wait_for()

        # Back on the console: reading a chat clears its marker.
        console.evaluate("window.__background = false; document.dispatchEvent(new Event('visibilitychange'))")
        console.locator("article.chat-panel").filter(has_text="Rhian Resident").get_by_role("textbox", name="Reply").focus()
        until(console, "document.title.startsWith('(1) ')")
    finally:
        context.close()


def test_resident_sees_times_and_the_case_reference_and_the_transcript_reaches_their_mailbox(
        app, server_factory, page, clients, make_user, api_token, smtp_sink, database_url):
    factories.service()  # Highways, with the pothole category
    _, token = agent_with_token(make_user, api_token, name="Tara Transcript")
    queue = {"REDIS_URL": REDIS_URL} if REDIS_URL else {
        "CRM_JOBS_FILE": tempfile.mktemp(prefix="crm-jobs-", suffix=".sqlite3")}
    mail = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": app.config["SMTP_PORT"], "CRM_MAIL_FROM": "council@example.org"}
    server = server_factory(**queue, **mail)
    worker = WorkerProcess(database_url, **queue, **mail)
    try:
        assert "crm.webchat.transcript.send_transcript" in worker.registered_jobs()
        agent_client = clients(server.url, "/agent", auth={"token": token})
        page.goto(server.url + "/chat")
        page.get_by_label("Your name").fill("Mina Mailbox")
        page.get_by_label("Email address (optional)").fill("mina@example.org")
        page.get_by_label("Your question (optional)").fill("There is a pothole on Bank Street")
        page.get_by_role("button", name="Start chat").click()
        page.get_by_text("You are chatting with Tara Transcript.").wait_for()
        assigned = agent_client.expect("assigned")
        chat_id = assigned["conversation_id"]
        first = page.locator("#chat-log li").filter(has_text="pothole on Bank Street")
        first.wait_for()
        assert re.fullmatch(r"\d\d:\d\d", first.locator("time").text_content())
        raised = agent_client.call("raise_case", {"conversation_id": chat_id, "service": "highways",
                                                  "category": "pothole", "title": "Pothole on Bank Street"})
        page.get_by_text(f"Your case reference is {raised['reference']}.", exact=False).wait_for()
        agent_client.call("message", {"conversation_id": chat_id, "client_id": "t1", "body": "We will fix it"})
        reply = page.locator("#chat-log li").filter(has_text="We will fix it")
        reply.wait_for()
        assert re.fullmatch(r"\d\d:\d\d", reply.locator("time").text_content())

        page.get_by_role("button", name="End chat").click()
        address = page.get_by_label("Email me a transcript")
        address.wait_for()
        assert address.input_value() == "mina@example.org"  # prefilled from the start of the chat
        assert serious(page) == []
        page.get_by_role("button", name="Send transcript").click()
        page.get_by_text("We have emailed you the transcript.").wait_for()
        wait_until(lambda: smtp_sink.to("mina@example.org"), "the transcript to arrive")
        sent = smtp_sink.to("mina@example.org")[0]
        assert sent["Subject"] == "Your webchat transcript"
        assert "We will fix it" in sent.get_content()
    finally:
        worker.stop()


def test_widget_keeps_a_chat_through_a_host_reload_hides_on_escape_and_keeps_send_in_view_on_a_phone(
        app, server_factory, chromium, clients, make_user, api_token):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class CouncilPage(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(page_html.encode())

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), CouncilPage)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    site = f"http://localhost:{httpd.server_port}"
    server = server_factory(WEBCHAT_ALLOWED_ORIGINS=site)
    page_html = (f"<!doctype html><html lang='en'><head><title>Council</title></head><body><main><h1>Bins</h1>"
                 f"</main><script src='{server.url}/chat/widget.js' async></script></body></html>")
    _, token = agent_with_token(make_user, api_token, name="Wanda Widget")
    agent_client = clients(server.url, "/agent", auth={"token": token})
    context = chromium.new_context(viewport={"width": 320, "height": 568})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT * 1000)
        page.goto(site + "/")
        page.get_by_role("button", name="Chat with us").click()
        frame = page.frame_locator("iframe[title='Chat with the council']")
        frame.get_by_label("Your name").fill("Phone Phoebe")
        frame.get_by_role("button", name="Start chat").click()
        frame.get_by_text("You are chatting with Wanda Widget.").wait_for()
        assigned = agent_client.expect("assigned")
        agent_client.call("message", {"conversation_id": assigned["conversation_id"], "client_id": "w1",
                                      "body": "How can I help?"})
        frame.get_by_text("How can I help?").wait_for()
        # The buttons say what they do: hiding the panel is not ending the chat.
        assert page.get_by_role("button", name="Hide chat").get_attribute("aria-expanded") == "true"
        send = frame.get_by_role("button", name="Send")
        frame.get_by_role("button", name="End chat").wait_for()
        box = send.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 568  # in view without scrolling

        # Escape in the chat (inside the frame) hides the panel and gives focus back to the button.
        frame.get_by_label("Type your message").press("Escape")
        page.get_by_role("button", name="Show your chat").wait_for()
        assert page.locator("#council-webchat-panel").is_hidden()

        # The council page reloads mid-chat: the chat comes back.
        page.get_by_role("button", name="Show your chat").click()
        page.reload()
        frame = page.frame_locator("iframe[title='Chat with the council']")
        frame.get_by_text("How can I help?").wait_for()
        assert page.get_by_role("button", name="Hide chat").get_attribute("aria-expanded") == "true"
        page.keyboard.press("Escape")  # Escape on the council page hides it too
        assert page.locator("#council-webchat-panel").is_hidden()
    finally:
        context.close()
        httpd.shutdown()
