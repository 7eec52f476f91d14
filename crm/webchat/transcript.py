"""Email a chat's transcript to the resident who asks for it (a background job)."""
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import select, update

from ..channels.email.transport import send_mail
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..jobs import app_config, job
from ..models import ChatSession, Conversation, CustomerIdentity
from . import messages

ONLY_YOUR_ADDRESS = "We can only send the transcript to the email address you gave when you started the chat"


def transcript_addresses(conversation: Conversation) -> set[str]:
    """Return where this chat's transcript may go: the address given at its start, or a verified one of the resident."""
    from ..customers.identity import normalise_email

    allowed = {normalise_email(conversation.chat.email)} if conversation.chat.email else set()
    if conversation.customer_id:
        allowed.update(db.session.scalars(select(CustomerIdentity.value).where(
            CustomerIdentity.customer_id == conversation.customer_id, CustomerIdentity.kind == "email",
            CustomerIdentity.verified.is_(True))))
    return allowed


def claim_transcript(conversation: Conversation, requested) -> str:
    """Return the address this chat's one transcript goes to, marking it sent; refuse any other address or a second."""
    from ..customers.identity import normalise_email

    allowed = transcript_addresses(conversation)
    address = normalise_email(requested) if requested else normalise_email(conversation.chat.email or "")
    if not address or address not in allowed:
        raise ValidationFailed(ONLY_YOUR_ADDRESS, {"email": [ONLY_YOUR_ADDRESS]})
    # One conditional UPDATE: two requests at once cannot both claim it.
    claimed = db.session.execute(update(ChatSession).where(
        ChatSession.conversation_id == conversation.id, ChatSession.transcript_sent_to.is_(None))
        .values(transcript_sent_to=address).execution_options(synchronize_session=False)).rowcount
    if not claimed:
        raise Conflict("The transcript of this chat has already been sent", code="transcript_sent")
    return address


def transcript_text(conversation: Conversation) -> str:
    """Return the resident-visible messages of a chat as plain text."""
    lines = [f"Your webchat with the council ({conversation.created_at:%d %B %Y})", ""]
    for message in messages.messages_after(conversation.id, 0):
        who = {"resident": "You", "agent": message.author_user.name if message.author_user else "Adviser",
               "system": "Council"}[message.author]
        lines.append(f"[{message.created_at:%H:%M}] {who}: {message.body}")
    return "\n".join(lines) + "\n"


@job(retries=3, retry_delay=60)
def send_transcript(conversation_id: int, to_address: str) -> None:
    """Send the transcript over SMTP."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None or conversation.chat is None or conversation.chat.transcript_sent_to != to_address:
        return  # only the one address claimed for this chat
    mail = EmailMessage()
    mail["From"] = app_config("CRM_MAIL_FROM")
    mail["To"] = to_address
    mail["Subject"] = "Your webchat transcript"
    mail["Message-ID"] = make_msgid(domain=app_config("CRM_MAIL_DOMAIN"))
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(transcript_text(conversation))
    send_mail(mail)
