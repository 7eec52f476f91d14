"""The channel-neutral conversation API: GET /conversations/{id}, POST /conversations/{id}/reply."""
from flask_login import current_user

from ..api import api_blueprint
from ..auth.access import roles_required
from ..extensions import db
from . import service
from .access import readable_conversation, writable_conversation
from .schemas import ConversationOut, MessageOut, ReplyIn

blp = api_blueprint("conversations", __name__, "Email threads and chats with their messages", "/conversations")


@blp.get("/<int:conversation_id>")
@roles_required()
@blp.response(200, ConversationOut)
def read(conversation_id):
    """Return a conversation with its messages in seq order."""
    return readable_conversation(current_user, conversation_id)


@blp.post("/<int:conversation_id>/reply")
@roles_required()
@blp.arguments(ReplyIn)
@blp.response(201, MessageOut)
def reply(data, conversation_id):
    """Reply to the resident: by email over SMTP with the thread's headers, or into their chat."""
    conversation = writable_conversation(current_user, conversation_id)
    message = service.reply(conversation, current_user, data["body"], internal=data["internal"])
    db.session.commit()
    return message
