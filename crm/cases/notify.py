"""Tell people about their cases: residents of public updates, owners of work routed to them.

Outbound mail belongs to the email channel (crm/channels/email.py); it is imported lazily so
the cases area does not depend on the email area at import time.
"""
import logging

from blinker import Namespace

log = logging.getLogger(__name__)
_signals = Namespace()

# Sent after commit whenever a case gets a new owner (routed, re-routed, assigned), so the
# console and supervisor views can push it to the owner: payload case_id, service_id,
# queue_id, assignee_id, rerouted.
case_routed = _signals.signal("case-routed")


def case_email_address(case):
    """Return where a case's news goes: the email given for that case, else the record's (None: nowhere).

    A case reported with only a phone number is not emailed to the record's address: the record may
    be another person's who shares that phone.
    """
    from ..channels.email import deliverable_address  # noqa: PLC0415
    from ..customers.identity import live_customer  # noqa: PLC0415
    from ..extensions import db  # noqa: PLC0415
    from ..models import CustomerIdentity  # noqa: PLC0415
    from sqlalchemy import select  # noqa: PLC0415

    if case.contact_email:
        bounced = db.session.scalar(select(CustomerIdentity.undeliverable).where(
            CustomerIdentity.kind == "email", CustomerIdentity.value == case.contact_email))
        return None if bounced else case.contact_email
    if case.contact_phone:
        return None
    return deliverable_address(live_customer(case.customer))


def send_to_customer(customer, subject: str, body: str, case=None):
    """Send a message to a resident through the email channel's outbound path (queued after commit).

    News of a case goes to the address the resident gave for that case (see case_email_address).
    """
    from ..channels import email as email_channel  # noqa: PLC0415  (lazy: the email area is separate)
    from ..customers.identity import live_customer  # noqa: PLC0415
    from ..extensions import db  # noqa: PLC0415
    from ..models import Conversation  # noqa: PLC0415
    from sqlalchemy import select  # noqa: PLC0415

    if case is None or not (case.contact_email or case.contact_phone):
        return email_channel.send_to_customer(customer, subject, body, case=case)
    address = case_email_address(case)
    if address is None:
        return None
    customer = live_customer(customer)
    # Like email_channel.send_to_customer, but to the case's own address (that one picks the record's).
    conversation = db.session.scalar(
        select(Conversation).where(Conversation.case_id == case.id, Conversation.channel == email_channel.CHANNEL)
        .order_by(Conversation.id.desc()).limit(1))
    if conversation is None:
        conversation = email_channel.new_conversation(customer, subject, case=case, status="resolved",
                                                      queue=email_channel.email_queue_for(case.service))
    return email_channel.queue_email(conversation, kind="notification", to_address=address, to_name=customer.name,
                                     subject=email_channel.subject_for(conversation, subject), body=body,
                                     author="system")


def notify_customer_of_update(case, event) -> bool:
    """Email the resident a public update when they gave an address; say whether it was queued.

    A resident who turned off "email me updates" in their account is not emailed: the update
    still shows on /track and in the account.
    """
    from ..customers.identity import live_customer  # noqa: PLC0415
    from ..portal.accounts import wants_email_updates  # noqa: PLC0415  (lazy: the portal area is separate)

    customer = live_customer(case.customer)
    if not wants_email_updates(customer):
        return False
    subject = f"Update on your case {case.reference}: {case.title}"
    body = (f"Dear {customer.name},\n\n{event.body}\n\n"
            f"Your case reference is {case.reference}. Quote it if you contact us about this.\n")
    return send_to_customer(customer, subject, body, case=case) is not None


def notify_customer_of_resolution(case, event) -> bool:
    """Email the resident that their case is resolved and how, when they take email updates."""
    from ..customers.identity import live_customer  # noqa: PLC0415
    from ..portal.accounts import wants_email_updates  # noqa: PLC0415

    customer = live_customer(case.customer)
    if not wants_email_updates(customer):
        return False
    subject = f"Your case {case.reference} is resolved: {case.title}"
    body = (f"Dear {customer.name},\n\nWe have resolved your case {case.reference}.\n\n"
            f"What we did: {event.body.strip()}\n\n"
            f"If the problem is not fixed, tell us through the tracking page quoting {case.reference}.\n")
    return send_to_customer(customer, subject, body, case=case) is not None


def owner_address(case):
    """Return (name, email) of whoever now owns the case: the assignee, else the service's team mailbox."""
    if case.assignee is not None:
        return case.assignee.name, case.assignee.email
    return f"{case.service.name} team", case.service.email_address


def owner_message(case, rerouted: bool):
    """Compose the note that tells a case's new owner it has come to them."""
    from email.message import EmailMessage
    from email.headerregistry import Address

    from flask import current_app, url_for

    name, address = owner_address(case)
    verb = "re-routed" if rerouted else "assigned"
    mime = EmailMessage()
    mime["From"] = current_app.config["CRM_MAIL_FROM"]
    mime["To"] = Address(name, addr_spec=address)
    mime["Subject"] = f"Case {case.reference} {verb} to you: {case.title}"[:300]
    mime["Auto-Submitted"] = "auto-generated"
    with current_app.test_request_context(base_url=current_app.config.get("CRM_BASE_URL") or "http://localhost"):
        link = url_for("cases.case_page", reference=case.reference, _external=True)
    due = f"{case.sla_due_at:%d %b %Y %H:%M} UTC" if case.sla_due_at else "no target"
    mime.set_content(f"{name},\n\nCase {case.reference} ({case.category.replace('_', ' ')}, priority "
                     f"{case.priority}) has been {verb} to you. Resolution due: {due}.\n\n{link}\n")
    return mime, address


def notify_new_owner(case_id: int, rerouted: bool) -> bool:
    """Email the case's owner (officer or team mailbox) that it is now theirs; say whether mail went."""
    from ..extensions import db
    from ..models import Case

    case = db.session.get(Case, case_id)
    if case is None:
        return False
    mime, address = owner_message(case, rerouted)
    if not address:
        log.info("case %s has no owner address to notify", case.reference)
        return False
    from ..channels import email as email_channel  # noqa: PLC0415

    email_channel.smtp_send(mime, mime["From"], [address])
    return True
