"""Two colleagues in the email console in real Chromium: one is warned the other is already replying;
the inbox shows how long each email has waited and when the reply is due; a canned reply fills in the
resident's name, the case reference and the agent's name; a file goes with the reply; "Send and resolve"
closes the conversation without counting it as resolved at first contact; a supervisor resolving another
conversation is offered its case's next step."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.channels import email as channel
from crm.extensions import db
from crm.models import CannedReply, Case, Category, Contact, Conversation, Message, Queue, Service
from tests import factories
from tests.browser.axe import assert_accessible
from tests.channels.mailbuilder import raw_email
from tests.conftest import PASSWORD

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


def _services():
    highways = factories.service("highways", "Highways", email_address="highways@council.example")
    db.session.add(Queue(code="highways_email", name="Highways email", channel="email", service_id=highways.id))
    db.session.commit()
    assert db.session.scalar(select(Category).where(Category.code == "pothole")) is not None
    return highways


def test_colleagues_reply_with_canned_text_and_files_and_resolve_to_the_cases_next_step(
        app, live_server, page, chromium, make_user, smtp_sink, tmp_path):
    _services()
    bethany = make_user("agent", name="Bethany Agent")
    colin = make_user("supervisor", name="Colin Supervisor")
    db.session.add_all([
        CannedReply(title="Pothole timescales", channel="email",
                    body="Dear {resident_name},\n\nYour reference is {case_reference}.\n\n{agent_name}"),
        CannedReply(title="Chat greeting", channel="webchat", body="Hi, how can I help?"),
    ])
    db.session.commit()
    first = channel.receive(raw_email(subject="Pothole on Main Street", to="highways@council.example"), source="file")
    second = channel.receive(raw_email(subject="Another pothole", to="highways@council.example",
                                       sender="Sam Resident <sam@example.org>"), source="file")
    # The first email came in ten days ago (received, not the Date header, starts the clock): overdue
    # whatever weekday the test runs on, even across a weekend and Christmas's bank holidays.
    for message in db.session.scalars(select(Message).where(Message.conversation_id == first.conversation_id)):
        message.created_at -= timedelta(days=10)
    db.session.commit()
    assert first.case_reference and second.case_reference
    conversation_url = f"/email/conversations/{first.conversation_id}"
    checked = []

    # Colin starts writing a reply to the first email.
    colleague = chromium.new_context().new_page()
    try:
        _sign_in(colleague, live_server, colin, conversation_url)
        colleague.get_by_label("Reply to the resident").fill("Looking into this now")
        colleague.wait_for_load_state("networkidle")

        # Bethany's inbox: how long each email has waited and when the reply is due (with its year).
        _sign_in(page, live_server, bethany, "/email/")
        row = page.get_by_role("row", name="Pothole on Main Street")
        assert "days" in row.inner_text() and "overdue" in row.inner_text().lower()
        assert "2026" in row.inner_text()
        assert_accessible(page, checked)

        page.get_by_role("link", name="Pothole on Main Street").click()
        page.wait_for_url(f"{live_server}{conversation_url}")
        warning = page.locator("#others-replying")
        assert warning.is_visible() and "Colin Supervisor is already replying" in warning.inner_text()
        assert_accessible(page, checked)
    finally:
        colleague.context.close()

    # The email canned reply is offered (the chat one is not) and comes personalised.
    options = page.get_by_label("Canned reply").locator("option").all_inner_texts()
    assert "Pothole timescales" in options and "Chat greeting" not in options
    page.get_by_label("Canned reply").select_option(label="Pothole timescales")
    body = page.get_by_label("Reply to the resident").input_value()
    assert body.startswith("Dear Jane Resident,") and first.case_reference in body and "Bethany Agent" in body
    assert "{" not in body

    leaflet = tmp_path / "repair-timescales.txt"
    leaflet.write_text("Dangerous potholes are made safe within 24 hours.\n")
    page.get_by_label("Attach files (optional)").set_input_files(str(leaflet))
    before = len(smtp_sink.to("jane@example.org"))
    page.get_by_role("button", name="Send and resolve").click()
    page.wait_for_selector("text=Reply queued for sending, and the conversation is resolved.")
    sent = smtp_sink.to("jane@example.org")[before:]
    assert len(sent) == 1
    parts = {part.get_filename(): part.get_content() for part in sent[0].iter_attachments()}
    assert parts == {"repair-timescales.txt": "Dangerous potholes are made safe within 24 hours.\n"}
    assert "Dear Jane Resident," in sent[0].get_body(("plain",)).get_content()
    db.session.expire_all()
    conversation = db.session.get(Conversation, first.conversation_id)
    assert conversation.status == "resolved"
    outcomes = {c.outcome for c in db.session.scalars(select(Contact).where(Contact.conversation_id == conversation.id))}
    assert "resolved_first_time" not in outcomes

    # Colin resolves the second conversation: he is offered its case's next step, not "resolved first time".
    supervisor = chromium.new_context().new_page()
    try:
        _sign_in(supervisor, live_server, colin, f"/email/conversations/{second.conversation_id}")
        outcome = supervisor.get_by_label("Outcome", exact=True)
        assert outcome.input_value() == "case_raised"
        assert "Resolved at first contact" not in outcome.locator("option").all_inner_texts()
        step = supervisor.get_by_label("Next step for the case")
        assert "Move it to In progress" in step.locator("option").all_inner_texts()
        assert_accessible(supervisor, checked)
        step.select_option(label="Move it to In progress")
        supervisor.get_by_role("button", name="Resolve conversation").click()
        supervisor.wait_for_selector(f"text=Case {second.case_reference} is now in progress.")
    finally:
        supervisor.context.close()
    db.session.expire_all()
    case = db.session.scalar(select(Case).where(Case.reference == second.case_reference))
    assert case.status == "in_progress"
    assert db.session.get(Conversation, second.conversation_id).status == "resolved"
    assert db.session.scalar(select(Service).where(Service.code == "highways")).id == case.service_id
