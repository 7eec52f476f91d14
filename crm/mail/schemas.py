"""Schemas of the email and conversation API."""
from marshmallow import Schema, fields, validate

from ..api.schemas import StrictSchema


class InboundResultOut(Schema):
    status = fields.String(metadata={"enum": ["ingested", "threaded", "duplicate", "auto_reply", "quarantined"]})
    conversation_id = fields.Integer(allow_none=True)
    customer_id = fields.Integer(allow_none=True)
    case_reference = fields.String()
    reason = fields.String()


class AttachmentOut(Schema):
    id = fields.Integer()
    filename = fields.String()
    content_type = fields.String()
    size = fields.Integer()
    inline = fields.Boolean()
    url = fields.String()


class MessageOut(Schema):
    id = fields.Integer()
    seq = fields.Integer()
    author = fields.String(metadata={"enum": ["resident", "agent", "system"]})
    author_name = fields.String(allow_none=True)
    direction = fields.String()
    internal = fields.Boolean()
    body = fields.String(metadata={"description": "plain text; quoted history and signature trimmed"})
    html = fields.String(metadata={"description": "sanitised HTML, when the email had HTML"})
    at = fields.String(metadata={"description": "ISO 8601 with offset"})
    delivery_status = fields.String(allow_none=True)
    delivery_error = fields.String(allow_none=True)
    attachments = fields.List(fields.Nested(AttachmentOut))


class ConversationOut(Schema):
    id = fields.Integer()
    channel = fields.String()
    status = fields.String()
    subject = fields.String(allow_none=True)
    customer_id = fields.Integer()
    case_reference = fields.String()
    queue = fields.String(allow_none=True)
    assignee_id = fields.Integer(allow_none=True)
    messages = fields.List(fields.Nested(MessageOut))


class ReplyIn(StrictSchema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    internal = fields.Boolean(load_default=False, metadata={"description": "an internal note: never sent"})
