"""Retention schedules: how long each kind of record is kept, and applying them in small batches.

A run walks each kind in id order, a batch of ids at a time (select the ids, change or delete
those rows, then `on_batch()` commits), so no statement holds more than a batch of rows and
nothing locks a whole table. Records under a legal hold are skipped and counted apart. A dry
run only counts. Every run, dry or not, leaves a RetentionRun row saying what it did.
"""
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Optional

from sqlalchemy import String, and_, cast, delete, exists, func, literal, not_, or_, select, update

from ..audit import audit
from ..conversations import lifecycle as conversation_lifecycle
from ..errors import NotFound, ValidationFailed
from ..extensions import db
from ..models import (
    RETENTION_ACTIONS, RETENTION_KINDS, Attachment, AuditLog, Case, CaseEvent, ChatSession, Contact, Conversation,
    CustomerIdentity, FormDraft, InboundEmail, LegalHold, Message, Open311Request, OutboundEmail, ResidentAccount,
    ResidentSignInToken, RetentionRule, RetentionRun, Service, utcnow,
)
from .audit_trail import audit_maintenance
from .holds import held_case_ids, held_customer_ids
from .references import release_references

BATCH = 500
REMOVED = "[removed under the retention schedule]"

# A typical English council's schedule for contact-centre records (after the LGA/IRMS Local Government
# Retention Guidelines): period in days and what happens at its end. Editable on the retention page.
DEFAULT_SCHEDULE = {
    "closed_cases": (6 * 365, "anonymise"),        # closure + 6 years (limitation period), figures kept
    "email_conversations": (2 * 365, "delete"),    # last message + 2 years
    "webchat_transcripts": (365, "delete"),        # chat end + 1 year
    "phone_contact_notes": (2 * 365, "anonymise"), # call + 2 years: notes removed, the contact counted
    "web_form_drafts": (30, "delete"),             # unfinished form answers: 30 days
    "quarantined_emails": (90, "delete"),          # unparseable mail: 90 days
    "raw_inbound_email": (365, "anonymise"),       # raw bytes dropped after 1 year; the message text stays
    "audit_entries": (6 * 365, "delete"),          # 6 years
    "resident_accounts": (3 * 365, "delete"),      # unused for 3 years
}
LABELS = {
    "closed_cases": "Closed cases", "email_conversations": "Email conversations",
    "webchat_transcripts": "Webchat transcripts", "phone_contact_notes": "Phone contact notes",
    "web_form_drafts": "Web-form drafts", "quarantined_emails": "Quarantined emails",
    "raw_inbound_email": "Raw inbound email bytes", "audit_entries": "Audit entries",
    "resident_accounts": "Resident accounts unused",
}


def ensure_default_rules() -> list[RetentionRule]:
    """Create any missing default rule (one per kind, every service) and return all rules."""
    have = {(r.kind, r.service_id) for r in db.session.scalars(select(RetentionRule))}
    for kind in RETENTION_KINDS:
        if (kind, None) not in have:
            days, action = DEFAULT_SCHEDULE[kind]
            db.session.add(RetentionRule(kind=kind, service_id=None, period_days=days, action=action))
    db.session.flush()
    return list(db.session.scalars(select(RetentionRule).order_by(RetentionRule.kind, RetentionRule.service_id)))


def schedule() -> list[RetentionRule]:
    """Return the rules as they apply, a default never saved included (shown, not stored: reading writes nothing)."""
    rules = list(db.session.scalars(select(RetentionRule)))
    have = {(r.kind, r.service_id) for r in rules}
    rules += [RetentionRule(kind=kind, service_id=None, period_days=DEFAULT_SCHEDULE[kind][0],
                            action=DEFAULT_SCHEDULE[kind][1], active=True)
              for kind in RETENTION_KINDS if (kind, None) not in have]
    return sorted(rules, key=lambda r: (r.kind, r.service_id is not None, r.service_id or 0))


def set_rule(actor, kind: str, period_days, action: str, active: bool = True, service: Optional[Service] = None) -> RetentionRule:
    """Change (or create, for a service's closed cases) a retention rule; audited."""
    errors = {}
    if kind not in RETENTION_KINDS:
        errors["kind"] = [f"one of {', '.join(RETENTION_KINDS)}"]
    try:
        period_days = int(period_days)
        if not 1 <= period_days <= 100 * 365:
            raise ValueError
    except (TypeError, ValueError):
        errors["period_days"] = ["a whole number of days from 1 to 36500"]
    if action not in RETENTION_ACTIONS:
        errors["action"] = ["delete or anonymise"]
    if service is not None and kind != "closed_cases":
        errors["service"] = ["only closed cases have schedules per service"]
    if errors:
        raise ValidationFailed("Check the schedule", errors)
    service_id = service.id if service else None
    rule = db.session.scalar(select(RetentionRule).where(
        RetentionRule.kind == kind,
        RetentionRule.service_id == service_id if service_id else RetentionRule.service_id.is_(None)))
    before = None
    if rule is None:
        rule = RetentionRule(kind=kind, service_id=service_id)
        db.session.add(rule)
    else:
        before = {"period_days": rule.period_days, "action": rule.action, "active": rule.active}
    rule.period_days, rule.action, rule.active = period_days, action, bool(active)
    rule.updated_by_id = getattr(actor, "id", None)
    db.session.flush()
    audit(actor, "records.retention.rule", "retention_rule", rule.id, kind=kind, service=service.code if service else None,
          before=before, after={"period_days": period_days, "action": action, "active": bool(active)})
    return rule


# ---- per kind: which rows are due, and what delete / anonymise do to a batch of ids -------------

@dataclass
class Target:
    """One retention rule made concrete: the rows due (condition) and the held rows (held)."""

    model: type
    due: object
    held: object


def _cutoff(rule):
    return utcnow() - timedelta(days=rule.period_days)


def _conversation_target(rule, channel, statuses, anonymise):
    cutoff = _cutoff(rule)
    # NULL-safe: NOT (NULL IN ...) is NULL, which would keep every conversation without a case.
    held = or_(Conversation.customer_id.in_(held_customer_ids()),
               and_(Conversation.case_id.is_not(None), Conversation.case_id.in_(held_case_ids())))
    due = and_(Conversation.channel == channel, Conversation.status.in_(statuses),
               func.coalesce(Conversation.last_message_at, Conversation.updated_at) < cutoff)
    if anonymise:
        due = and_(due, exists().where(Message.conversation_id == Conversation.id, Message.body != REMOVED))
    return Target(Conversation, due, held)


def _targets(rule, services_with_own_rule) -> Target:
    """Return what a rule applies to."""
    kind, cutoff, anonymise = rule.kind, _cutoff(rule), rule.action == "anonymise"
    if kind == "closed_cases":
        due = and_(Case.status.in_(("resolved", "closed")),
                   func.coalesce(Case.closed_at, Case.resolved_at, Case.updated_at) < cutoff)
        if rule.service_id:
            due = and_(due, Case.service_id == rule.service_id)
        elif services_with_own_rule:
            due = and_(due, Case.service_id.not_in(services_with_own_rule))
        if anonymise:
            due = and_(due, Case.title != REMOVED)
        return Target(Case, due, Case.id.in_(held_case_ids()))
    if kind == "email_conversations":
        return _conversation_target(rule, "email", conversation_lifecycle.DONE, anonymise)
    if kind == "webchat_transcripts":
        return _conversation_target(rule, "webchat", conversation_lifecycle.FINISHED, anonymise)
    if kind == "phone_contact_notes":
        due = and_(Contact.channel == "phone", Contact.occurred_at < cutoff)
        if anonymise:
            due = and_(due, or_(Contact.notes.is_not(None), Contact.summary != REMOVED))
        held = or_(Contact.customer_id.in_(held_customer_ids()),
                   and_(Contact.case_id.is_not(None), Contact.case_id.in_(held_case_ids())))
        return Target(Contact, due, held)
    if kind == "web_form_drafts":
        return Target(FormDraft, FormDraft.updated_at < cutoff, None)
    if kind == "quarantined_emails":
        return Target(InboundEmail, and_(InboundEmail.status == "quarantined", InboundEmail.received_at < cutoff),
                      and_(InboundEmail.customer_id.is_not(None), InboundEmail.customer_id.in_(held_customer_ids())))
    if kind == "raw_inbound_email":
        due = and_(InboundEmail.status != "quarantined", InboundEmail.received_at < cutoff)
        if anonymise:
            due = and_(due, func.length(InboundEmail.raw) > 0)
        return Target(InboundEmail, due,
                      and_(InboundEmail.customer_id.is_not(None), InboundEmail.customer_id.in_(held_customer_ids())))
    if kind == "audit_entries":
        held_ids = select(cast(LegalHold.customer_id, String)).where(
            LegalHold.released_at.is_(None), LegalHold.customer_id.is_not(None))
        return Target(AuditLog, AuditLog.at < cutoff,
                      and_(AuditLog.target_type == "customer", AuditLog.target_id.is_not(None),
                           AuditLog.target_id.in_(held_ids)))
    if kind == "resident_accounts":
        due = func.coalesce(ResidentAccount.last_sign_in_at, ResidentAccount.created_at) < cutoff
        held = ResidentAccount.identity_id.is_not(None) & ResidentAccount.identity_id.in_(
            select(CustomerIdentity.id).where(CustomerIdentity.customer_id.in_(held_customer_ids())))
        return Target(ResidentAccount, due, held)
    raise ValueError(kind)


def _delete_conversations(ids):
    messages = select(Message.id).where(Message.conversation_id.in_(ids))
    db.session.execute(delete(Attachment).where(Attachment.message_id.in_(messages)))
    db.session.execute(delete(OutboundEmail).where(OutboundEmail.conversation_id.in_(ids)))
    release_references(InboundEmail, select(InboundEmail.id).where(InboundEmail.conversation_id.in_(ids)))
    db.session.execute(delete(InboundEmail).where(InboundEmail.conversation_id.in_(ids)))
    release_references(Message, messages)
    release_references(Conversation, ids)
    db.session.execute(update(Contact).where(Contact.conversation_id.in_(ids)).values(conversation_id=None))
    db.session.execute(delete(ChatSession).where(ChatSession.conversation_id.in_(ids)))
    db.session.execute(delete(Message).where(Message.conversation_id.in_(ids)))
    db.session.execute(delete(Conversation).where(Conversation.id.in_(ids)))


def _anonymise_conversations(ids):
    messages = select(Message.id).where(Message.conversation_id.in_(ids))
    db.session.execute(delete(Attachment).where(Attachment.message_id.in_(messages)))
    db.session.execute(update(Message).where(Message.conversation_id.in_(ids)).values(
        body=REMOVED, html=None, delivery_error=None))
    db.session.execute(update(OutboundEmail).where(OutboundEmail.conversation_id.in_(ids)).values(
        to_name=None, subject=REMOVED, last_error=None))
    db.session.execute(update(ChatSession).where(ChatSession.conversation_id.in_(ids)).values(
        name="", email=None, phone=None, visitor_ip=None, visitor_id=None))
    db.session.execute(update(Conversation).where(Conversation.id.in_(ids)).values(subject=None))


def _apply(kind: str, action: str, ids: list[int]) -> None:
    """Delete or anonymise one batch of records of a kind."""
    if kind == "closed_cases":
        db.session.execute(delete(Attachment).where(Attachment.case_id.in_(ids)))
        if action == "anonymise":
            db.session.execute(update(CaseEvent).where(CaseEvent.case_id.in_(ids), CaseEvent.body.is_not(None))
                               .values(body=None))
            db.session.execute(update(Open311Request).where(Open311Request.case_id.in_(ids)).values(
                address_string=None, address_id=None, device_id=None, account_id=None, media_url=None, attributes={}))
            db.session.execute(update(Case).where(Case.id.in_(ids)).values(
                title=REMOVED, description="", location_address=None))
        else:
            db.session.execute(delete(CaseEvent).where(CaseEvent.case_id.in_(ids)))
            db.session.execute(delete(Open311Request).where(Open311Request.case_id.in_(ids)))
            db.session.execute(update(Contact).where(Contact.case_id.in_(ids)).values(case_id=None))
            db.session.execute(update(Conversation).where(Conversation.case_id.in_(ids)).values(case_id=None))
            db.session.execute(update(Case).where(Case.merged_into_id.in_(ids)).values(merged_into_id=None))
            db.session.execute(delete(LegalHold).where(LegalHold.case_id.in_(ids), LegalHold.released_at.is_not(None)))
            release_references(Case, ids)
            db.session.execute(delete(Case).where(Case.id.in_(ids)))
    elif kind in ("email_conversations", "webchat_transcripts"):
        (_anonymise_conversations if action == "anonymise" else _delete_conversations)(ids)
    elif kind == "phone_contact_notes":
        if action == "anonymise":
            # Only uncounted columns change, so the daily report totals stay as they are.
            db.session.execute(update(Contact).where(Contact.id.in_(ids)).values(notes=None, summary=REMOVED))
        else:
            # Through the ORM, so the daily totals lose these contacts too.
            release_references(Contact, ids)
            for contact in db.session.scalars(select(Contact).where(Contact.id.in_(ids))):
                db.session.delete(contact)
            db.session.flush()
    elif kind == "web_form_drafts":
        uploads = [int(v) for (u,) in db.session.execute(select(FormDraft.uploads).where(FormDraft.id.in_(ids)))
                   for v in (u or {}).values() if str(v).isdigit()]
        if uploads:
            db.session.execute(delete(Attachment).where(
                Attachment.id.in_(uploads), Attachment.message_id.is_(None), Attachment.case_id.is_(None)))
        release_references(FormDraft, ids)
        db.session.execute(delete(FormDraft).where(FormDraft.id.in_(ids)))
    elif kind == "quarantined_emails":
        release_references(InboundEmail, ids)
        db.session.execute(delete(InboundEmail).where(InboundEmail.id.in_(ids)))
    elif kind == "raw_inbound_email":
        if action == "anonymise":
            db.session.execute(update(InboundEmail).where(InboundEmail.id.in_(ids)).values(raw=b""))
        else:
            release_references(InboundEmail, ids)
            db.session.execute(delete(InboundEmail).where(InboundEmail.id.in_(ids)))
    elif kind == "audit_entries":
        with audit_maintenance():
            release_references(AuditLog, ids)
            db.session.execute(delete(AuditLog).where(AuditLog.id.in_(ids)))
    elif kind == "resident_accounts":
        identities = list(db.session.scalars(select(ResidentAccount.identity_id).where(
            ResidentAccount.id.in_(ids), ResidentAccount.identity_id.is_not(None))))
        db.session.execute(delete(ResidentSignInToken).where(ResidentSignInToken.account_id.in_(ids)))
        if action == "anonymise":
            db.session.execute(update(ResidentAccount).where(ResidentAccount.id.in_(ids)).values(
                email=literal("removed-") + cast(ResidentAccount.id, String) + "@invalid", name="", password_hash=None,
                identity_id=None))
        else:
            release_references(ResidentAccount, ids)
            db.session.execute(delete(ResidentAccount).where(ResidentAccount.id.in_(ids)))
        # The account's sign-in identity goes with it; the customer's other identities stay.
        if identities:
            release_references(CustomerIdentity, select(CustomerIdentity.id).where(
                CustomerIdentity.id.in_(identities), CustomerIdentity.kind == "portal"))
            db.session.execute(delete(CustomerIdentity).where(
                CustomerIdentity.id.in_(identities), CustomerIdentity.kind == "portal"))


def _pk(model):
    return model.conversation_id if model is ChatSession else model.id


def run_retention(actor=None, dry_run: bool = False, on_batch: Callable[[], None] = lambda: None,
                  progress: Optional[Callable[[str, int], None]] = None, batch: int = BATCH,
                  kinds: Optional[list[str]] = None) -> RetentionRun:
    """Apply (or, dry, count) every active schedule; `on_batch` runs after each batch (the edge commits there)."""
    rules = [r for r in ensure_default_rules() if r.active and (kinds is None or r.kind in kinds)]
    run = RetentionRun(dry_run=dry_run, actor_id=getattr(actor, "id", None), counts={}, held={})
    db.session.add(run)
    db.session.flush()
    run_id = run.id
    on_batch()
    counts, held = {kind: 0 for kind in RETENTION_KINDS if kinds is None or kind in kinds}, {}
    per_service = [r.service_id for r in rules if r.kind == "closed_cases" and r.service_id]
    for rule in sorted(rules, key=lambda r: (RETENTION_KINDS.index(r.kind), r.service_id is None)):
        kind, action = rule.kind, rule.action
        target = _targets(rule, per_service)
        model, pk = target.model, _pk(target.model)
        eligible = target.due if target.held is None else and_(target.due, not_(target.held))
        if target.held is not None:
            kept = db.session.scalar(select(func.count()).select_from(model).where(target.due, target.held)) or 0
            if kept:
                held[kind] = held.get(kind, 0) + kept
        if dry_run:
            counts[kind] += db.session.scalar(select(func.count()).select_from(model).where(eligible)) or 0
            continue
        last = 0
        while True:
            ids = list(db.session.scalars(select(pk).where(eligible, pk > last).order_by(pk).limit(batch)))
            if not ids:
                break
            _apply(kind, action, ids)
            counts[kind] += len(ids)
            last = ids[-1]
            on_batch()
            if progress:
                progress(kind, counts[kind])
        db.session.expire_all()
    run = db.session.get(RetentionRun, run_id)
    run.counts, run.held = counts, held
    run.finished_at, run.status = utcnow(), "finished"
    audit(actor, "records.retention.dry_run" if dry_run else "records.retention.run", "retention_run", run.id,
          counts=counts, held=held)
    db.session.flush()
    return run


def recent_runs(limit: int = 30) -> list[RetentionRun]:
    """Return the latest retention runs, newest first."""
    return list(db.session.scalars(select(RetentionRun).order_by(RetentionRun.id.desc()).limit(limit)))


def get_run(run_id: int) -> RetentionRun:
    """Return one run or refuse."""
    run = db.session.get(RetentionRun, run_id)
    if run is None:
        raise NotFound("No such retention run")
    return run
