"""Retention: a run over generated records of every kind deletes or anonymises exactly what is due."""
import json
from datetime import timedelta

from sqlalchemy import func, select

from crm.customers.timeline import record_contact
from crm.extensions import db
from crm.models import (
    AuditLog, Case, Contact, ContactDailyTotal, Conversation, FormDefinition, FormDraft, InboundEmail, LegalHold,
    Message, ResidentAccount, RetentionRule, RetentionRun, Service, utcnow,
)
from crm.records.holds import place_hold
from crm.records.retention import REMOVED, set_rule
from tests import factories

EXPECTED = {"closed_cases": 5, "email_conversations": 2, "webchat_transcripts": 2, "phone_contact_notes": 3,
            "web_form_drafts": 4, "quarantined_emails": 2, "raw_inbound_email": 3, "audit_entries": 2,
            "resident_accounts": 2}


def _ago(days):
    return utcnow() - timedelta(days=days)


def _closed_case(person, service, days, status="closed"):
    case = factories.case(person, service_code=service, category="pothole" if service == "highways" else "missed_bin")
    case.status = status
    case.closed_at = case.resolved_at = _ago(days) if status in ("closed", "resolved") else None
    case.updated_at = _ago(days)
    return case


def _conversation(person, channel, status, days, n):
    conv = Conversation(customer_id=person.id, channel=channel, status=status, token=f"{channel}-{n}-{days}",
                        last_message_at=_ago(days), last_seq=1)
    db.session.add(conv)
    db.session.flush()
    db.session.add(Message(conversation_id=conv.id, seq=1, author="resident", body=f"message {n}"))
    return conv


def generate(officer):
    """Make due and not-yet-due records of every kind; return the customer and the held case."""
    factories.service()
    factories.service(code="waste", name="Waste", categories=(("missed_bin", "Missed bin"),))
    person = factories.customer(name="Retention Person", email="ret@example.org")
    for days in (7 * 365, 7 * 365, 8 * 365):
        _closed_case(person, "highways", days)
    _closed_case(person, "highways", 10)  # closed recently
    _closed_case(person, "highways", 9 * 365, status="in_progress")  # old but still open
    held = _closed_case(person, "highways", 7 * 365)
    for days in (60, 90):
        _closed_case(person, "waste", days)  # the waste service keeps closed cases 30 days
    _closed_case(person, "waste", 5)
    for n, days in enumerate((3 * 365, 4 * 365, 30)):
        _conversation(person, "email", "resolved", days, n)
    _conversation(person, "email", "open", 5 * 365, 9)
    for n, days in enumerate((2 * 365, 3 * 365, 10)):
        _conversation(person, "webchat", "ended", days, n)
    for days in (3 * 365, 3 * 365, 4 * 365, 20):
        record_contact(person, "phone", summary="call", notes="what they said", category="pothole",
                       outcome="resolved_first_time", occurred_at=_ago(days), started_at=_ago(days),
                       ended_at=_ago(days) + timedelta(minutes=3))
    form = FormDefinition(slug="report", title="Report", service_id=db.session.scalar(select(Service.id)),
                          category_code="pothole", fields=[])
    db.session.add(form)
    db.session.flush()
    for n, days in enumerate((60, 60, 90, 400, 1)):
        db.session.add(FormDraft(token=f"draft-{n}", form_id=form.id, answers={"name": "x"}, updated_at=_ago(days)))
    for n, days in enumerate((100, 200, 10)):
        db.session.add(InboundEmail(dedupe_key=f"q{n}", content_sha256="0" * 64, raw=b"junk", size=4, source="smtp",
                                    status="quarantined", received_at=_ago(days)))
    for n, days in enumerate((2 * 365, 2 * 365, 3 * 365, 30)):
        db.session.add(InboundEmail(dedupe_key=f"r{n}", content_sha256="0" * 64, raw=b"From: a@b\r\n\r\nhi", size=15,
                                    source="smtp", status="ingested", received_at=_ago(days)))
    for days in (7 * 365, 8 * 365):
        db.session.add(AuditLog(action="user.login", target_type="user", target_id="1", details={}, at=_ago(days)))
    for n, days in enumerate((4 * 365, 5 * 365, 10)):
        db.session.add(ResidentAccount(email=f"acct{n}@example.org", name=f"Account {n}", session_stamp="s" * 32,
                                       created_at=_ago(days), last_sign_in_at=_ago(days)))
    db.session.flush()
    set_rule(officer, "closed_cases", 30, "delete", service=db.session.scalar(select(Service).where(Service.code == "waste")))
    place_hold(officer, "Insurance claim", case=held, reference="CLAIM-1")
    db.session.commit()
    return person, held


def _totals():
    return db.session.execute(select(func.sum(ContactDailyTotal.contacts), func.sum(ContactDailyTotal.handle_seconds))).one()


def test_retention_run_on_every_kind_has_exact_counts(app, runner, officer):
    person, held = generate(officer)
    totals = _totals()
    dry = runner.invoke(args=["crm", "retention", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout.strip().splitlines()[-1]) == EXPECTED
    assert db.session.scalar(select(func.count()).select_from(FormDraft)) == 5  # a dry run changes nothing

    run = runner.invoke(args=["crm", "retention", "--batch", "2"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout.strip().splitlines()[-1]) == EXPECTED
    db.session.expire_all()

    assert db.session.get(Case, held.id).title != REMOVED  # the legal hold kept it
    cases = db.session.scalars(select(Case)).all()
    assert sum(c.title == REMOVED for c in cases) == 3
    assert len([c for c in cases if c.service.code == "waste"]) == 1
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 3  # the recent email and chat, the open email
    phone = db.session.scalars(select(Contact).where(Contact.channel == "phone")).all()
    assert sorted(c.notes is None for c in phone) == [False, True, True, True]
    assert _totals() == totals  # notes removed, contacts still counted
    assert db.session.scalar(select(func.count()).select_from(FormDraft)) == 1
    assert db.session.scalar(select(func.count()).select_from(InboundEmail).where(InboundEmail.status == "quarantined")) == 1
    raw = db.session.scalars(select(InboundEmail).where(InboundEmail.status == "ingested")).all()
    assert sorted(len(r.raw) for r in raw) == [0, 0, 0, 15]
    assert db.session.scalar(select(func.count()).select_from(ResidentAccount)) == 1
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.at < _ago(6 * 365))) == 0

    again = runner.invoke(args=["crm", "retention"])
    assert json.loads(again.stdout.strip().splitlines()[-1]) == dict.fromkeys(EXPECTED, 0)
    runs = db.session.scalars(select(RetentionRun).order_by(RetentionRun.id)).all()
    assert [r.dry_run for r in runs] == [True, False, False]
    assert runs[1].counts == EXPECTED and runs[1].held == {"closed_cases": 1} and runs[1].finished_at
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "records.retention.run")) == 2


def test_released_hold_lets_the_next_run_take_the_case(app, runner, officer):
    person, held = generate(officer)
    runner.invoke(args=["crm", "retention"])
    hold = db.session.scalar(select(LegalHold))
    from crm.records.holds import release_hold

    release_hold(officer, hold.id, "claim settled")
    db.session.commit()
    result = runner.invoke(args=["crm", "retention"])
    assert json.loads(result.stdout.strip().splitlines()[-1])["closed_cases"] == 1
    db.session.expire_all()
    assert db.session.get(Case, held.id).title == REMOVED


def test_retention_page_lets_admins_edit_schedules_and_officers_run_them(app, client, auth, make_user, officer):
    from tests.conftest import csrf_from

    admin = make_user("admin")
    auth.login(admin)
    page = client.get("/records/retention")
    assert page.status_code == 200 and "Raw inbound email bytes" in page.get_data(as_text=True)
    assert db.session.scalar(select(func.count(RetentionRule.id))) == 0  # the defaults are shown, not stored by a read
    token = csrf_from(page.get_data(as_text=True))
    saved = client.post("/records/retention", data={"csrf_token": token, "kind": "web_form_drafts",
                                                    "period_days": "14", "action": "delete", "active": "yes"})
    assert saved.status_code == 302
    bad = client.post("/records/retention", data={"csrf_token": token, "kind": "web_form_drafts",
                                                  "period_days": "soon", "action": "delete"}, follow_redirects=True)
    assert "whole number of days" in bad.get_data(as_text=True)
    assert client.post("/records/retention/run", data={"csrf_token": token, "action": "run"}).status_code == 403
    auth.logout()
    auth.login(officer)
    page = client.get("/records/retention")
    assert ">14<" in page.get_data(as_text=True) or 'value="14"' in page.get_data(as_text=True)
    ran = client.post("/records/retention/run", data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                                      "action": "dry_run"}, follow_redirects=True)
    assert ran.status_code == 200 and "Dry run" in ran.get_data(as_text=True)
    assert db.session.scalar(select(RetentionRun)).dry_run is True


def test_deleting_phone_contacts_takes_them_out_of_the_daily_totals_too(app, runner, officer):
    generate(officer)
    set_rule(officer, "phone_contact_notes", 730, "delete")
    db.session.commit()
    contacts_before = _totals()[0]
    result = runner.invoke(args=["crm", "retention", "--batch", "2"])
    assert json.loads(result.stdout.strip().splitlines()[-1])["phone_contact_notes"] == 3
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Contact).where(Contact.channel == "phone")) == 1
    assert _totals()[0] == contacts_before - 3


def test_the_worker_job_applies_the_schedules_and_logs_the_run(app, officer):
    from crm.records.jobs import daily_retention

    generate(officer)
    counts = daily_retention.call_local()
    assert counts == EXPECTED
    run = db.session.scalar(select(RetentionRun))
    assert run.actor_id is None and run.dry_run is False and run.counts == EXPECTED
