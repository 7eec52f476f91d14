"""API of the email channel: POST /inbound/email, GET /conversations/{id}, POST /conversations/{id}/reply.

POST /inbound/email is for MTAs and mail services, not people: it takes
`Authorization: Bearer TOKEN` where TOKEN is either the dedicated ingest token
(CRM_INBOUND_EMAIL_TOKEN, so a mail pipe needs no staff account) or any staff API token
(`crm create-token`). No cookie sessions: a browser never posts raw mail.
"""
import hmac

from flask import current_app, request
from flask_login import current_user
from flask_smorest import Blueprint

from .. import visibility
from ..api import API_PREFIX, api_blueprint
from ..auth.access import roles_required
from ..channels.email import ATTACHMENT_URL, receive, reply_to_conversation
from ..errors import DomainError, NotFound, ValidationFailed
from ..extensions import csrf, db
from ..models import Conversation
from .access import check_view_conversation
from .schemas import ConversationOut, InboundResultOut, MessageOut, ReplyIn

inbound_blp = Blueprint("inbound_email", __name__, url_prefix=API_PREFIX + "/inbound",
                        description="Raw inbound email from an MTA or mail service")
csrf.exempt(inbound_blp)

conversations_blp = api_blueprint("conversations", __name__, "Email threads and chats with their messages",
                                  "/conversations")


def _ingest_token_ok() -> bool:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        return False
    secret = header[7:].strip()
    expected = current_app.config.get("CRM_INBOUND_EMAIL_TOKEN")
    if expected and hmac.compare_digest(secret.encode(), expected.encode()):
        return True
    return current_user.is_authenticated  # a staff token, loaded by the bearer request loader


@inbound_blp.post("/email")
@inbound_blp.response(200, InboundResultOut)
@inbound_blp.doc(
    summary="Ingest one raw RFC 5322 message",
    description="Body: the raw message, `Content-Type: message/rfc822`. Auth: `Authorization: Bearer` "
                "with the ingest token (CRM_INBOUND_EMAIL_TOKEN) or any staff API token. The same "
                "message twice is stored once and answered `duplicate`.",
    requestBody={"required": True, "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}}},
    security=[{"bearer": []}],
)
def inbound_email():
    """Ingest a raw message posted by an MTA pipe or a mail service."""
    if not _ingest_token_ok():
        raise DomainError("Send Authorization: Bearer with the ingest token or a staff API token",
                          status=401, code="unauthorized")
    if request.mimetype != "message/rfc822":
        raise DomainError("Post the raw message with Content-Type: message/rfc822",
                          {"content_type": [f"got {request.mimetype or 'none'}"]},
                          status=415, code="unsupported_media_type")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ValidationFailed("The body is empty: post the raw message", {"message": ["empty"]})
    result = receive(raw, source="http")
    return result.as_dict()


def serialise_message(message) -> dict:
    """Return the API form of a conversation message."""
    return {
        "id": message.id,
        "seq": message.seq,
        "author": message.author,
        "author_name": message.author_user.name if message.author_user else None,
        "direction": message.direction,
        "internal": message.internal,
        "body": message.body,
        "html": message.html,
        "at": message.created_at.isoformat(),
        "delivery_status": message.delivery_status,
        "delivery_error": message.delivery_error,
        "attachments": [{"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size,
                         "inline": a.inline, "url": ATTACHMENT_URL.format(id=a.id)} for a in message.attachments],
    }


def serialise_conversation(conversation: Conversation) -> dict:
    """Return the API form of a conversation with its messages in seq order."""
    body = {
        "id": conversation.id,
        "channel": conversation.channel,
        "status": conversation.status,
        "subject": conversation.subject,
        "customer_id": conversation.customer_id,
        "queue": conversation.queue.code if conversation.queue else None,
        "assignee_id": conversation.assignee_id,
        "messages": [serialise_message(m) for m in conversation.messages],
    }
    if conversation.case is not None:
        body["case_reference"] = conversation.case.reference
    return body


def get_conversation_or_404(conversation_id: int) -> Conversation:
    """Return the conversation or raise NotFound; 403 when the caller may not read it (sensitive service)."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"No conversation {conversation_id}")
    check_view_conversation(current_user, conversation)
    return conversation


@conversations_blp.get("/<int:conversation_id>")
@roles_required()
@conversations_blp.response(200, ConversationOut)
def read(conversation_id):
    """Return a conversation with its messages in seq order."""
    conversation = get_conversation_or_404(conversation_id)
    db.session.commit()  # the audit entry of a sensitive read
    return serialise_conversation(conversation)


@conversations_blp.post("/<int:conversation_id>/reply")
@roles_required()
@conversations_blp.arguments(ReplyIn)
@conversations_blp.response(201, MessageOut)
def reply(data, conversation_id):
    """Reply to the resident: by email over SMTP with the thread's headers, or into their chat."""
    conversation = get_conversation_or_404(conversation_id)
    visibility.check_write_conversation(current_user, conversation)
    message = reply_to_conversation(conversation, current_user, data["body"], internal=data["internal"])
    db.session.commit()
    return serialise_message(message)
