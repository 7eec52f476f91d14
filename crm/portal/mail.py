"""Mail for resident accounts: one-time sign-in links, sent straight over SMTP.

They do not go through the email channel's send_to_customer on purpose: that keeps the
message on the customer's timeline, where staff would read a link that signs in as the resident.
"""
import logging
import smtplib
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from ..jobs import app_config, job

log = logging.getLogger(__name__)


def build_message(to: str, subject: str, body: str) -> EmailMessage:
    """Return a plain-text message from the council to one address."""
    message = EmailMessage()
    message["From"] = formataddr((app_config("EMAIL_FROM_NAME", "Council"), app_config("CRM_MAIL_FROM")))
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=app_config("CRM_MAIL_DOMAIN"))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: nobody should auto-reply to it
    message.set_content(body)
    return message


def smtp_deliver(message: EmailMessage) -> None:
    """Hand a message to the configured SMTP relay."""
    host, port = app_config("SMTP_HOST"), int(app_config("SMTP_PORT"))
    with smtplib.SMTP(host, port, timeout=int(app_config("SMTP_TIMEOUT", 30))) as smtp:
        if app_config("SMTP_STARTTLS"):
            smtp.starttls()
        if app_config("SMTP_USERNAME"):
            smtp.login(app_config("SMTP_USERNAME"), app_config("SMTP_PASSWORD") or "")
        smtp.send_message(message)


@job(retries=3, retry_delay=30)
def send_account_mail(to: str, subject: str, body: str) -> None:
    """Send one account email (retried when the relay is down)."""
    smtp_deliver(build_message(to, subject, body))


def sign_in_link_body(name: str, url: str, already_registered: bool = False) -> str:
    """Return the text of a sign-in link email."""
    opening = ("Someone (we hope you) asked to create an account with this email address, but you "
               "already have one." if already_registered else "Use this link to sign in to your council account.")
    return "\n".join([
        f"Dear {name},", "", opening, "", url, "",
        "The link works once, within an hour. If you did not ask for it, you can ignore this email:",
        "nobody can sign in without the link.",
    ])


def send_sign_in_link(account, url: str, already_registered: bool = False) -> None:
    """Owe the sign-in link email in this transaction: the outbox sends it after the commit, retried."""
    from ..outbox import enqueue_after_commit  # noqa: PLC0415

    enqueue_after_commit(send_account_mail, account.email, "Your sign-in link",
                         sign_in_link_body(account.name, url, already_registered))
