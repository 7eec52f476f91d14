"""Schemas of the email API."""
from marshmallow import Schema, fields


class InboundResultOut(Schema):
    status = fields.String(metadata={"enum": ["ingested", "threaded", "duplicate", "auto_reply", "quarantined"]})
    conversation_id = fields.Integer(allow_none=True)
    customer_id = fields.Integer(allow_none=True)
    case_reference = fields.String()
    reason = fields.String()
