"""The one way mail leaves the CRM: every sender (residents' email, sign-in links, chat transcripts,
case owners' notes) builds its message and hands it to `send_mail`, which talks to the SMTP relay."""
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Optional

from flask import current_app


def plain_message(to: str, subject: str, body: str) -> EmailMessage:
    """Return an automatic plain-text message from the council to one address."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = formataddr((config.get("EMAIL_FROM_NAME", "Council"), config["CRM_MAIL_FROM"]))
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=config["CRM_MAIL_DOMAIN"])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: nobody should auto-reply to it
    message.set_content(body)
    return message


def send_mail(message: EmailMessage, envelope_from: Optional[str] = None, recipients: Optional[list] = None) -> None:
    """Hand a message to the configured SMTP relay (STARTTLS and login when configured).

    `envelope_from` "" is the null sender; None takes the From header, as do `recipients` None and To/Cc.
    """
    config = current_app.config
    with smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=config.get("SMTP_TIMEOUT", 30)) as smtp:
        smtp.ehlo()
        if config.get("SMTP_STARTTLS"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if config.get("SMTP_USERNAME"):
            smtp.login(config["SMTP_USERNAME"], config.get("SMTP_PASSWORD") or "")
        smtp.send_message(message, from_addr=envelope_from, to_addrs=recipients)
