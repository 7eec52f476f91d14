"""The JSON shapes of a conversation and its messages, dumped straight from the rows (one serialiser per shape)."""
from marshmallow import Schema, fields, missing, validate

from ..api.schemas import StrictSchema
from ..channels.email import ATTACHMENT_URL


class AttachmentOut(Schema):
    id = fields.Integer()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    inline = fields.Boolean()
    url = fields.Function(lambda item: ATTACHMENT_URL.format(id=item.id))


class MessageOut(Schema):
    id = fields.Integer()
    seq = fields.Integer()
    author = fields.String(metadata={"enum": ["resident", "agent", "system"]})
    author_name = fields.Function(lambda message: message.author_user.name if message.author_user else None,
                                  allow_none=True)
    direction = fields.String()
    internal = fields.Boolean()
    body = fields.String(metadata={"description": "plain text; quoted history and signature trimmed"})
    html = fields.String(metadata={"description": "sanitised HTML, when the email had HTML"})
    at = fields.Function(lambda message: message.created_at.isoformat(),
                         metadata={"description": "ISO 8601 with offset"})
    delivery_status = fields.String(allow_none=True)
    delivery_error = fields.String(allow_none=True)
    attachments = fields.List(fields.Nested(AttachmentOut))


class ConversationOut(Schema):
    id = fields.Integer()
    channel = fields.String()
    status = fields.String()
    subject = fields.String(allow_none=True)
    customer_id = fields.Integer()
    # Left out when the conversation has no case.
    case_reference = fields.Function(lambda conversation: conversation.case.reference if conversation.case else missing)
    queue = fields.Function(lambda conversation: conversation.queue.code if conversation.queue else None,
                            allow_none=True)
    assignee_id = fields.Integer(allow_none=True)
    messages = fields.List(fields.Nested(MessageOut))


class ReplyIn(StrictSchema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    internal = fields.Boolean(load_default=False, metadata={"description": "an internal note: never sent"})
