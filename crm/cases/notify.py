"""Tell people about their cases: residents of public updates, owners of work routed to them.

A resident's news goes by the channel the registry says reaches them (crm.channels.registry.reaching):
the one they prefer when it can deliver to them now, else email; no channel is imported for it.
A case's new owner is staff, not a resident: that note goes by the mail transport (send_mail).
"""
import logging

from blinker import Namespace

from ..channels import registry
from ..customers.identity import live_customer

log = logging.getLogger(__name__)
_signals = Namespace()

# Sent after commit whenever a case gets a new owner (routed, re-routed, assigned), so the
# console and supervisor views can push it to the owner: payload case_id, service_id,
# queue_id, assignee_id, rerouted.
case_routed = _signals.signal("case-routed")


def send_to_customer(customer, subject: str, body: str, case=None):
    """Send a message to a resident by the channel that reaches them; None when none can (the caller commits).

    News of a case goes where the resident can be reached for that case: email uses the address given
    for that case, and a case reported with only a phone number is not emailed to the record's address.
    """
    customer = live_customer(customer)
    channel = registry.reaching(customer, case)
    if channel is None:
        return None
    return channel.deliver(customer, subject, body, case=case)


def notify_customer_of_update(case, event) -> bool:
    """Send the resident a public update when a channel reaches them; say whether it was queued.

    A resident who turned off news of their reports in their account is not sent it: the update
    still shows on /track and in the account.
    """
    from ..portal.accounts import wants_email_updates  # noqa: PLC0415  (lazy: the portal area is separate)

    customer = live_customer(case.customer)
    if not wants_email_updates(customer):
        return False
    subject = f"Update on your case {case.reference}: {case.title}"
    body = (f"Dear {customer.name},\n\n{event.body}\n\n"
            f"Your case reference is {case.reference}. Quote it if you contact us about this.\n")
    return send_to_customer(customer, subject, body, case=case) is not None


def notify_customer_of_resolution(case, event) -> bool:
    """Tell the resident that their case is resolved and how, when they take news of their reports."""
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
    from ..channels.email.transport import send_mail  # noqa: PLC0415

    send_mail(mime, mime["From"], [address])
    return True
