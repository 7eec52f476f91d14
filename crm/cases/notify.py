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


def send_to_customer(customer, subject: str, body: str, case=None):
    """Send a message to a resident through the email channel's outbound path (queued after commit)."""
    from ..channels import email as email_channel  # noqa: PLC0415  (lazy: the email area is separate)

    return email_channel.send_to_customer(customer, subject, body, case=case)


def notify_customer_of_update(case, event) -> bool:
    """Email the resident a public update when they gave an address; say whether it was queued."""
    customer = case.customer
    subject = f"Update on your case {case.reference}: {case.title}"
    body = (f"Dear {customer.name},\n\n{event.body}\n\n"
            f"Your case reference is {case.reference}. Quote it if you contact us about this.\n")
    return send_to_customer(customer, subject, body, case=case) is not None
