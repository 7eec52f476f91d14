"""Erasure: remove a person's personal data, keep the anonymous facts the council must count.

Contacts, cases and conversations stay (with channel, times, category, outcome, service), so
reports, the daily totals and open data keep their figures; every value that says who the person
was or what they wrote goes. Attachments and raw emails are deleted. A tombstone records that it
happened, when, by whom and why, and nothing else.
"""
import json
from typing import Optional

from sqlalchemy import String, and_, case as sa_case, cast, delete, func, not_, or_, select, update

from ..audit import audit
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..models import (
    Address, Attachment, AuditLog, Case, CaseEvent, ChatSession, Contact, Conversation, Customer,
    CustomerIdentity, CustomerNameTerm, ErasureTombstone, InboundEmail, Message, Open311Request, OutboundEmail,
    ResidentAccount, ResidentSignInToken,
)
from .audit_trail import audit_maintenance
from .family import case_ids, conversation_ids, customer_family, identity_ids, live_customer_for, message_ids
from .holds import live_holds
from .references import release_references

ERASED = "[erased]"
ERASED_ADDRESS = "erased@invalid"


def erased_name(customer_id: int) -> str:
    """Return the placeholder name an erased customer record carries."""
    return f"Erased customer {customer_id}"


# Contact details given for one case (the cases area keeps them on the case when present).
CASE_CONTACT_COLUMNS = ("contact_email", "contact_phone", "contact_name")


def _present(model, names) -> dict:
    """Return {column: None} for those of the names the model's table has."""
    return {name: None for name in names if name in model.__table__.c}


def _personal_values(ids: list[int]) -> list[str]:
    """Collect the person's identifying strings, to scrub them from audit details."""
    values = set()
    for name in db.session.scalars(select(Customer.name).where(Customer.id.in_(ids))):
        values.add(name)
    for value in db.session.scalars(select(CustomerIdentity.value).where(CustomerIdentity.customer_id.in_(ids))):
        values.add(value)
    for row in db.session.execute(select(Address.line1, Address.line2, Address.postcode).where(Address.customer_id.in_(ids))):
        values.update(v for v in row if v)
    for row in db.session.execute(select(ResidentAccount.email, ResidentAccount.name)
                                  .where(ResidentAccount.identity_id.in_(identity_ids(ids)))):
        values.update(v for v in row if v)
    for row in db.session.execute(select(ChatSession.name, ChatSession.email, ChatSession.phone)
                                  .where(ChatSession.conversation_id.in_(conversation_ids(ids)))):
        values.update(v for v in row if v)
    columns = [Case.__table__.c[name] for name in CASE_CONTACT_COLUMNS if name in Case.__table__.c]
    if columns:
        for row in db.session.execute(select(*columns).where(Case.customer_id.in_(ids))):
            values.update(v for v in row if v)
    return sorted((v for v in values if v and len(v) >= 3), key=len, reverse=True)


def _audit_about(ids):
    """Return the condition for audit entries about the family, its cases and its conversations."""
    return or_(
        and_(AuditLog.target_type == "customer", AuditLog.target_id.in_([str(i) for i in ids])),
        and_(AuditLog.target_type == "case", AuditLog.target_id.in_(select(cast(Case.id, String)).where(Case.customer_id.in_(ids)))),
        and_(AuditLog.target_type == "conversation",
             AuditLog.target_id.in_(select(cast(Conversation.id, String)).where(Conversation.customer_id.in_(ids)))),
    )


def _plan(ids: list[int]) -> list[tuple]:
    """Return (count key, model, condition, statement or None) for every step of an erasure, in order."""
    cases, conversations, messages, identities = case_ids(ids), conversation_ids(ids), message_ids(ids), identity_ids(ids)
    accounts = select(ResidentAccount.id).where(ResidentAccount.identity_id.in_(identities))
    attachment_where = or_(Attachment.message_id.in_(messages), Attachment.case_id.in_(cases))
    inbound_where = or_(InboundEmail.customer_id.in_(ids), InboundEmail.conversation_id.in_(conversations))
    return [
        ("attachments", Attachment, attachment_where, delete(Attachment).where(attachment_where)),
        ("inbound_emails", InboundEmail, inbound_where, delete(InboundEmail).where(inbound_where)),
        ("outbound_emails", OutboundEmail, OutboundEmail.conversation_id.in_(conversations),
         update(OutboundEmail).where(OutboundEmail.conversation_id.in_(conversations)).values(
             to_address=ERASED_ADDRESS, to_name=None, subject=ERASED, in_reply_to=None, references=None, last_error=None,
             # Mail not yet sent is never sent: the address it was for is gone.
             status=sa_case((OutboundEmail.status.in_(("queued", "retrying", "sending")), "suppressed"),
                            else_=OutboundEmail.status))),
        ("messages", Message, Message.conversation_id.in_(conversations),
         update(Message).where(Message.conversation_id.in_(conversations)).values(
             body=ERASED, html=None, email_message_id=None, delivery_error=None)),
        ("webchat_sessions", ChatSession, ChatSession.conversation_id.in_(conversations),
         update(ChatSession).where(ChatSession.conversation_id.in_(conversations)).values(
             name="", email=None, phone=None, visitor_id=None, visitor_ip=None)),
        ("conversations", Conversation, Conversation.customer_id.in_(ids),
         update(Conversation).where(Conversation.customer_id.in_(ids)).values(subject=None)),
        ("contacts", Contact, Contact.customer_id.in_(ids),
         # Only columns the daily totals do not count: report figures stay as they were.
         update(Contact).where(Contact.customer_id.in_(ids)).values(summary=ERASED, notes=None)),
        ("case_events", CaseEvent, CaseEvent.case_id.in_(cases),
         update(CaseEvent).where(CaseEvent.case_id.in_(cases), CaseEvent.body.is_not(None)).values(body=None)),
        ("open311_requests", Open311Request, Open311Request.case_id.in_(cases),
         update(Open311Request).where(Open311Request.case_id.in_(cases)).values(
             address_string=None, address_id=None, device_id=None, account_id=None, media_url=None, attributes={})),
        ("cases", Case, Case.customer_id.in_(ids),
         update(Case).where(Case.customer_id.in_(ids)).values(title=ERASED, description="", location_address=None,
                                                              **_present(Case, CASE_CONTACT_COLUMNS))),
        ("resident_sign_in_tokens", ResidentSignInToken, ResidentSignInToken.account_id.in_(accounts),
         delete(ResidentSignInToken).where(ResidentSignInToken.account_id.in_(accounts))),
        ("resident_accounts", ResidentAccount, ResidentAccount.identity_id.in_(identities),
         delete(ResidentAccount).where(ResidentAccount.identity_id.in_(identities))),
        ("identities", CustomerIdentity, CustomerIdentity.customer_id.in_(ids),
         delete(CustomerIdentity).where(CustomerIdentity.customer_id.in_(ids))),
        ("addresses", Address, Address.customer_id.in_(ids), delete(Address).where(Address.customer_id.in_(ids))),
        ("name_terms", CustomerNameTerm, CustomerNameTerm.customer_id.in_(ids),
         delete(CustomerNameTerm).where(CustomerNameTerm.customer_id.in_(ids))),
        ("customers", Customer, Customer.id.in_(ids), None),
        # Counted without the records actions themselves, so a dry run and the erasure agree.
        ("audit_entries", AuditLog, and_(_audit_about(ids), not_(AuditLog.action.startswith("records."))), None),
    ]


# Tables the plan deals with by name; any other table pointing at customers is scrubbed generically.
PLANNED = {"attachments", "inbound_emails", "outbound_emails", "messages", "chat_sessions", "conversations", "contacts",
           "case_events", "open311_requests", "cases", "resident_sign_in_tokens", "resident_accounts",
           "customer_identities", "addresses", "customer_name_terms", "customers", "audit_log", "legal_holds",
           "erasure_tombstones"}


def _other_tables(ids):
    """Yield (table, condition) for each table outside the plan with rows pointing at the family."""
    for table in db.metadata.sorted_tables:
        if table.name in PLANNED:
            continue
        columns = [c for c in table.columns if any(fk.column.table.name == "customers" for fk in c.foreign_keys)]
        if columns:
            yield table, or_(*[c.in_(ids) for c in columns])


# Codes, never personal: left alone so the report totals (which count by them) cannot drift.
CODE_COLUMNS = {"channel", "direction", "outcome", "category", "status", "kind", "action", "target_type", "source",
                "priority", "author", "topic", "service_code"}


def _scrub_table(table, where, pattern) -> None:
    """Replace the person's values in every text or JSON column of the matching rows."""
    from sqlalchemy import JSON, String, Text

    columns = [c for c in table.columns if isinstance(c.type, (String, Text, JSON)) and not c.foreign_keys
               and c.name not in CODE_COLUMNS]
    keys = list(table.primary_key.columns)
    if not columns or not keys:
        return
    for row in db.session.execute(select(*keys, *columns).where(where)).all():
        values = row._mapping
        changed = {}
        for column in columns:
            value = values[column.name]
            if value is None:
                continue
            new = pattern.sub(ERASED, value) if isinstance(value, str) else _scrub(value, pattern)
            if new != value:
                changed[column.name] = new
        if changed:
            db.session.execute(table.update().where(*[k == values[k.name] for k in keys]).values(**changed))


def _count(model, where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(where)) or 0


def _scrub(value, pattern):
    """Return a JSON value with every personal string replaced."""
    return json.loads(pattern.sub(ERASED, json.dumps(value, ensure_ascii=False)))


def erase_customer(customer_id: int, actor, reason: str, request_reference: Optional[str] = None,
                   dry_run: bool = False) -> dict:
    """Erase (or, dry, count) the personal data of a customer and every record merged into it; not committed."""
    import re

    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the data is erased (the request and its lawful basis)", {"reason": ["required"]})
    main = live_customer_for(customer_id)
    ids = customer_family(main.id)
    holds = live_holds(ids)
    if holds:
        raise Conflict("A legal hold stops this erasure until it is released",
                       {"legal_hold": [f"hold {h.id}: {h.reference or 'no reference'}" for h in holds]}, code="legal_hold")
    plan = _plan(ids)
    counts = {key: _count(model, where) for key, model, where, _ in plan}
    others = list(_other_tables(ids))
    for table, where in others:
        counts[table.name] = _count(table, where)
    if dry_run:
        audit(actor, "records.erase.dry_run", "customer", main.id, reason=reason[:2000],
              request_reference=request_reference, counts=counts)
        return {"customer_id": main.id, "dry_run": True, "counts": counts}
    values = _personal_values(ids)
    pattern = re.compile("|".join(re.escape(v) for v in values), re.IGNORECASE) if values else None
    for key, model, where, statement in plan:
        if statement is not None:
            if statement.is_delete:
                release_references(model, select(model.__table__.c.id).where(where) if "id" in model.__table__.c else [])
            db.session.execute(statement.execution_options(synchronize_session=False))
    for customer_row in db.session.scalars(select(Customer).where(Customer.id.in_(ids))):
        customer_row.name = erased_name(customer_row.id)
        customer_row.vulnerability_notes = None
        customer_row.preferred_channel = None
    if pattern is not None:
        # A safety net: columns added later to the planned tables lose the person's values too.
        for key, model, where, statement in plan:
            if model not in (Customer, AuditLog):
                _scrub_table(model.__table__, where, pattern)
        for table, where in others:
            _scrub_table(table, where, pattern)
        with audit_maintenance():
            for entry in db.session.scalars(select(AuditLog).where(_audit_about(ids))):
                scrubbed = _scrub(entry.details or {}, pattern)
                if scrubbed != entry.details:
                    entry.details = scrubbed
            db.session.flush()
    db.session.add(ErasureTombstone(customer_id=main.id, actor_id=getattr(actor, "id", None), reason=reason[:2000],
                                    request_reference=request_reference, counts=counts))
    audit(actor, "records.erase", "customer", main.id, reason=reason[:2000], request_reference=request_reference,
          counts=counts, merged_customer_ids=ids[1:])
    db.session.flush()
    db.session.expire_all()
    return {"customer_id": main.id, "dry_run": False, "counts": counts}
