"""What goes out: replies, acknowledgements and notifications, stored in their conversation and queued after commit."""
import hashlib
import re
import secrets
from datetime import datetime
from typing import Iterable, Optional

from blinker import Namespace
from flask import current_app
from sqlalchemy import select

from ...batching import stage
from ...conversations import lifecycle
from ...knowledge.notices import notice_text
from ...customers.identity import live_customer, reserved_mail_domain
from ...customers.timeline import record_contact
from ...errors import Conflict
from ...extensions import db
from ...models import Attachment, Conversation, Customer, InboundEmail, Message, OutboundEmail, utcnow
from ...signals import send_after_commit
from .parse import OUR_ID_PREFIX, clean_line, date_written
from .routing import CHANNEL, email_queue_for
from .threads import ThreadIndex, append_message, new_conversation


_signals = Namespace()
# Sent after commit for each queued outbound email; the receiver below hands it to the job queue.
outbound_email_queued = _signals.signal("outbound-email-queued")


def new_message_id() -> str:
    """Return a fresh Message-ID in our domain (without angle brackets)."""
    return f"{OUR_ID_PREFIX}{secrets.token_hex(12)}@{current_app.config['CRM_MAIL_DOMAIN']}"


def reply_address(conversation: Conversation) -> Optional[str]:
    """Return the conversation's own reply address when reply addresses are on."""
    if not current_app.config.get("EMAIL_REPLY_ADDRESSES"):
        return None
    return f"reply+{conversation.token}@{current_app.config['CRM_MAIL_DOMAIN']}"


def deliverable_address(customer: Customer, preferred: Optional[str] = None) -> Optional[str]:
    """Return an email address of the customer that has not bounced (the preferred one first)."""
    customer = live_customer(customer)
    identities = [i for i in customer.identities
                  if i.kind == "email" and not i.undeliverable and not reserved_mail_domain(i.value)]
    for identity in identities:
        if preferred and identity.value == preferred.lower():
            return identity.value
    return identities[0].value if identities else None


def thread_headers(conversation: Conversation, index: Optional[ThreadIndex] = None) -> tuple:
    """Return (In-Reply-To, References) for the next message of a conversation."""
    if index is not None and conversation.id in index.threads:  # new in this batch, not flushed yet
        rows = index.threads[conversation.id]
    else:
        rows = db.session.execute(select(Message.email_message_id, Message.direction).where(
            Message.conversation_id == conversation.id, Message.email_message_id.is_not(None))
            .order_by(Message.seq)).all()
    ids = [mid for mid, _ in rows]
    inbound = [mid for mid, direction in rows if direction == "inbound"]
    in_reply_to = inbound[-1] if inbound else (ids[-1] if ids else None)
    references = ids if len(ids) <= 20 else ids[:1] + ids[-19:]
    return in_reply_to, references


def subject_for(conversation: Conversation, subject: Optional[str] = None) -> str:
    """Return an outbound subject: "Re:" the thread's, tagged with the case reference (or our token)."""
    base = clean_line(subject or conversation.subject or "Your enquiry", 240)
    if subject is None and not re.match(r"^\s*re:", base, re.IGNORECASE):
        base = f"Re: {base}"
    reference = conversation.case.reference if conversation.case else None
    if reference:
        if reference.lower() not in base.lower():
            base = f"{base} [{reference}]"
    elif f"[#{conversation.token}]" not in base:
        base = f"{base} [#{conversation.token}]"
    return base[:300]


def queue_email(conversation: Conversation, *, kind: str, to_address: str, subject: str, body: str,
                author: str = "agent", author_user=None, to_name: Optional[str] = None,
                sent_at: Optional[datetime] = None, index: Optional[ThreadIndex] = None) -> Message:
    """Store an outbound message in the conversation and queue its sending (after commit)."""
    in_reply_to, references = thread_headers(conversation, index)
    mid = new_message_id()
    message = append_message(conversation, author, body, direction="outbound", author_user=author_user,
                             email_message_id=mid, delivery_status="queued", sent_at=sent_at, index=index)
    send = OutboundEmail(stored_message_id=message.id, conversation_id=conversation.id, kind=kind,
                         to_address=to_address, to_name=clean_line(to_name or "", 200) or None,
                         subject=subject[:300], message_id_header=mid, in_reply_to=in_reply_to,
                         references=" ".join(references) or None, status="queued", attempts=0)
    stage(send)
    send_after_commit(outbound_email_queued, outbound_id=send.id)
    return message


def acknowledge(conversation, customer, address, parsed, case, index: ThreadIndex) -> Optional[Message]:
    """Send the acknowledgement of a new enquiry, rate-limited per sender.

    Called only for a conversation the same message has just opened, so once per thread;
    replies, auto-replies and bounces never get here.
    """
    config = current_app.config
    if not config.get("EMAIL_ACK_ENABLED") or not address:
        return None
    if deliverable_address(customer, address) != address:
        return None
    recent = index.recent_acks[address]
    if recent >= config["EMAIL_ACK_PER_SENDER_PER_HOUR"]:
        return None
    index.recent_acks[address] = recent + 1
    reference = case.reference if case else None
    lines = [f"Dear {live_customer(customer).name},", "",
             "Thank you for contacting the council. We have received your email"
             + (f" and your reference is {reference}." if reference else "."), "",
             "Please keep the reference in the subject line if you write to us again about this, "
             "so that your messages stay together.", "",
             "This is an automatic acknowledgement; a member of our team will reply.", "",
             config["EMAIL_FROM_NAME"]]
    service_id = case.service_id if case else (conversation.queue.service_id if conversation.queue else None)
    notices = notice_text(service_id, live_customer(customer))
    if notices:
        lines[-2:-2] = [notices, ""]  # a known problem is said before the sign-off
    return queue_email(conversation, kind="ack", to_address=address, to_name=customer.name,
                       subject=subject_for(conversation), body="\n".join(lines), author="system",
                       sent_at=date_written(parsed), index=index)  # kept next to the enquiry it answers


def send_to_customer(customer: Customer, subject: str, body: str, *, case=None,
                     conversation: Optional[Conversation] = None) -> Optional[Message]:
    """Queue a plain-and-HTML email to the customer's deliverable address; None when there is none.

    The message is kept in `conversation`, else the case's latest email conversation, else a new
    one (marked resolved, so a notification does not sit in an inbox; a reply reopens it).
    Flushes; the caller commits, and the send is queued after the commit.
    """
    customer = live_customer(customer)
    address = deliverable_address(customer)
    if address is None:
        return None
    if conversation is None and case is not None:
        conversation = db.session.scalar(
            select(Conversation).where(Conversation.case_id == case.id, Conversation.channel == CHANNEL,
                                       Conversation.merged_into_id.is_(None))
            .order_by(Conversation.id.desc()).limit(1))
    if conversation is None:
        conversation = new_conversation(customer, subject, case=case, status="resolved",
                                        queue=email_queue_for(case.service if case else None))
    if case is not None and conversation.case_id is None:
        conversation.case = case
        db.session.flush()
    return queue_email(conversation, kind="notification", to_address=address, to_name=customer.name,
                       subject=subject_for(conversation, subject), body=body, author="system")


def send_reply(conversation: Conversation, agent, body: str, attachments: Iterable = ()) -> Message:
    """Queue an agent's reply by email, threaded, with its files; the conversation then waits on the resident.

    Called by crm.conversations.service.reply, which has checked the body. `attachments` are
    (filename, content type, bytes).
    """
    customer = live_customer(conversation.customer)
    last_from = db.session.scalar(select(InboundEmail.from_address).where(
        InboundEmail.conversation_id == conversation.id, InboundEmail.from_address.is_not(None))
        .order_by(InboundEmail.id.desc()).limit(1))
    address = deliverable_address(customer, last_from)
    if address is None:
        raise Conflict("The customer has no email address we can deliver to (it bounced or is missing)",
                       {"customer": ["no deliverable email address"]}, code="undeliverable")
    message = queue_email(conversation, kind="reply", to_address=address, to_name=customer.name,
                          subject=subject_for(conversation), body=body, author="agent", author_user=agent)
    for filename, content_type, data in attachments:
        db.session.add(Attachment(message_id=message.id, filename=clean_line(filename, 200) or "attachment",
                                  content_type=content_type[:100], size=len(data),
                                  sha256=hashlib.sha256(data).hexdigest(), data=data))
    if conversation.assignee_id is None:
        conversation.assignee_id = agent.id
    lifecycle.waiting_on_customer(conversation)
    case = conversation.case
    if case is not None and case.first_responded_at is None:
        case.first_responded_at = utcnow()
    record_contact(customer, CHANNEL, direction="outbound", summary=f"Email reply: {conversation.subject or ''}"[:300],
                   notes=body[:2000], agent=agent, conversation=conversation, case=case,
                   occurred_at=message.created_at)
    return message

