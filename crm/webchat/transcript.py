"""Email a chat's transcript to the resident who asks for it (a background job)."""
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from ..extensions import db
from ..jobs import app_config, job
from ..models import Conversation
from . import service


def transcript_text(conversation: Conversation) -> str:
    """Return the resident-visible messages of a chat as plain text."""
    lines = [f"Your webchat with the council ({conversation.created_at:%d %B %Y})", ""]
    for message in service.messages_after(conversation.id, 0):
        who = {"resident": "You", "agent": message.author_user.name if message.author_user else "Adviser",
               "system": "Council"}[message.author]
        lines.append(f"[{message.created_at:%H:%M}] {who}: {message.body}")
    return "\n".join(lines) + "\n"


@job(retries=3, retry_delay=60)
def send_transcript(conversation_id: int, to_address: str) -> None:
    """Send the transcript over SMTP."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        return
    mail = EmailMessage()
    mail["From"] = app_config("CRM_MAIL_FROM")
    mail["To"] = to_address
    mail["Subject"] = "Your webchat transcript"
    mail["Message-ID"] = make_msgid(domain=app_config("CRM_MAIL_DOMAIN"))
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(transcript_text(conversation))
    with smtplib.SMTP(app_config("SMTP_HOST"), app_config("SMTP_PORT"), timeout=30) as smtp:
        if app_config("SMTP_STARTTLS"):
            smtp.starttls()
        if app_config("SMTP_USERNAME"):
            smtp.login(app_config("SMTP_USERNAME"), app_config("SMTP_PASSWORD"))
        smtp.send_message(mail)
