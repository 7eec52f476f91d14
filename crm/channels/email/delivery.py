"""Sending what was queued: build the MIME message, hand it to the SMTP relay, retry with back-off."""
import html as html_lib
import logging
import re
import smtplib
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from flask import current_app
from huey.exceptions import RetryTask
from sqlalchemy import select, update

from ...customers.identity import reserved_mail_domain
from ...errors import Conflict
from ...extensions import db
from ...jobs import crontab, huey, job, periodic_job
from ...models import CustomerIdentity, OutboundEmail, utcnow
from ...signals import send_after_commit
from .outbound import outbound_email_queued, reply_address
from .transport import send_mail


log = logging.getLogger(__name__)

RETRY_FIRST_DELAY_SECONDS = 30  # then 60, 120, ... until EMAIL_SEND_ATTEMPTS are spent


def html_from_text(body: str) -> str:
    """Render a plain-text reply as simple HTML (escaped; paragraphs and line breaks kept)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    inner = "\n".join("<p>" + html_lib.escape(p).replace("\n", "<br>\n") + "</p>" for p in paragraphs)
    return ('<!doctype html><html><body style="font-family: Arial, sans-serif; font-size: 15px; '
            f'line-height: 1.5">\n{inner}\n</body></html>')


def build_mime(send: OutboundEmail) -> EmailMessage:
    """Build the MIME message of an outbound send: threading headers, plain text and HTML."""
    config = current_app.config
    mime = EmailMessage()
    mime["From"] = Address(config["EMAIL_FROM_NAME"], addr_spec=config["CRM_MAIL_FROM"])
    mime["To"] = Address(send.to_name or "", addr_spec=send.to_address)
    mime["Subject"] = send.subject
    mime["Date"] = format_datetime(send.created_at)
    mime["Message-ID"] = f"<{send.message_id_header}>"
    if send.in_reply_to:
        mime["In-Reply-To"] = f"<{send.in_reply_to}>"
    if send.references:
        mime["References"] = " ".join(f"<{r}>" for r in send.references.split())
    address = reply_address(send.conversation)
    if address:
        mime["Reply-To"] = address
    if send.kind != "reply":
        # RFC 3834: mark what we send automatically, and ask other robots not to answer it.
        mime["Auto-Submitted"] = "auto-replied" if send.kind == "ack" else "auto-generated"
        mime["X-Auto-Response-Suppress"] = "All"
    body = send.stored_message.body
    mime.set_content(body)
    mime.add_alternative(html_from_text(body), subtype="html")
    for item in send.stored_message.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        if not (maintype and subtype) or maintype in ("multipart", "message"):
            maintype, subtype = "application", "octet-stream"
        mime.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.filename)
    return mime


def _permanent(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600


def deliver(outbound_id: int) -> str:
    """Try to send one queued email; record the outcome on it and its message. Commits; returns the status."""
    # Claim the send in one conditional UPDATE, so two workers (or a duplicate job) never both send it.
    claimed = db.session.execute(
        update(OutboundEmail).where(OutboundEmail.id == outbound_id, OutboundEmail.status.in_(("queued", "retrying")))
        .values(status="sending", claimed_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    send = db.session.get(OutboundEmail, outbound_id)
    if send is None:
        return "missing"
    if not claimed:
        return send.status  # sent already, being sent, or given up on
    message = send.stored_message
    identity = db.session.scalar(select(CustomerIdentity).where(
        CustomerIdentity.kind == "email", CustomerIdentity.value == send.to_address.lower()))
    if (identity is not None and identity.undeliverable) or reserved_mail_domain(send.to_address):
        send.status = message.delivery_status = "suppressed"
        send.last_error = message.delivery_error = "address is marked undeliverable"
        db.session.commit()
        return send.status
    send.attempts += 1
    # Automatic mail goes out with the null sender (RFC 3834), so nothing bounces back into a loop.
    envelope_from = "" if send.kind == "ack" else current_app.config["CRM_MAIL_FROM"]
    try:
        send_mail(build_mime(send), envelope_from, [send.to_address])
    except (smtplib.SMTPException, OSError) as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:2000]
        final = _permanent(exc) or send.attempts >= current_app.config["EMAIL_SEND_ATTEMPTS"]
        send.status = message.delivery_status = "failed" if final else "retrying"
        send.last_error = message.delivery_error = f"attempt {send.attempts}: {error}"
        db.session.commit()
        log.warning("email %s to %s %s: %s", send.id, send.to_address, send.status, error)
        return send.status
    send.status = message.delivery_status = "sent"
    send.last_error = message.delivery_error = None
    send.sent_at = utcnow()
    db.session.commit()
    return send.status


def retry_send(send: OutboundEmail) -> None:
    """Put a failed send back in the queue (an agent's "try again"); flushes, queued after commit."""
    if send.status not in ("failed", "retrying"):
        raise Conflict(f"This email is {send.status}; only failed sends are retried")
    send.status = send.stored_message.delivery_status = "queued"
    send.attempts = 0
    send_after_commit(outbound_email_queued, outbound_id=send.id)


def requeue_stalled(older_than_minutes: int = 10) -> int:
    """Queue again the sends whose job was lost (queue down at commit, worker killed mid-send). Commits."""
    cutoff = utcnow() - timedelta(minutes=older_than_minutes)
    # Every state is read from the database alone: a queued send whose job never ran, a send whose
    # worker died mid-send, and a send waiting to retry whose delayed job the queue lost (the longest
    # back-off is well under the cut-off).
    stalled = db.session.scalars(select(OutboundEmail).where(
        ((OutboundEmail.status == "queued") & (OutboundEmail.created_at < cutoff))
        | ((OutboundEmail.status.in_(("sending", "retrying"))) & (OutboundEmail.claimed_at < cutoff)))).all()
    for send in stalled:
        send.status = "retrying" if send.status == "sending" else send.status
        send_after_commit(outbound_email_queued, outbound_id=send.id)
    db.session.commit()
    return len(stalled)


@periodic_job(crontab(minute="*/10"))
def requeue_stalled_email() -> int:
    """Periodic job: hand lost sends back to the queue."""
    return requeue_stalled()


@job()
def deliver_email(outbound_id: int) -> str:
    """Background job: send one queued email, retried with back-off until EMAIL_SEND_ATTEMPTS run out."""
    status = deliver(outbound_id)
    if status == "retrying":
        attempts = db.session.get(OutboundEmail, outbound_id).attempts
        raise RetryTask(delay=RETRY_FIRST_DELAY_SECONDS * 2 ** (attempts - 1))
    return status


@outbound_email_queued.connect
def _enqueue_delivery(sender, outbound_id, **payload):
    """Hand a committed outbound email to the job queue."""
    try:
        if huey.immediate:
            # Tests run jobs in-process: give the job its own app context and so its own session,
            # since this runs inside the committing session's after-commit hook.
            with current_app.app_context():
                deliver_email(outbound_id)
        else:
            deliver_email(outbound_id)
    except Exception:  # noqa: BLE001 - the row is committed; requeue_stalled picks it up later
        log.exception("could not queue outbound email %s; it will be queued again", outbound_id)
