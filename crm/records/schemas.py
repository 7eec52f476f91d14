"""The JSON shapes of the records area, dumped straight from the rows (one serialiser per shape)."""
from marshmallow import Schema, fields


class AuditEntryOut(Schema):
    """One audit entry; the CSV export has the same columns."""
    id = fields.Integer()
    at = fields.DateTime()
    actor_id = fields.Integer(allow_none=True)
    actor = fields.Function(lambda entry: entry.actor.email if entry.actor else None, allow_none=True,
                            metadata={"type": "string", "description": "the staff member's email"})
    action = fields.String()
    target_type = fields.String()
    target_id = fields.String(allow_none=True)
    details = fields.Function(lambda entry: entry.details or {}, metadata={"type": "object"})


class AuditPageOut(Schema):
    items = fields.List(fields.Nested(AuditEntryOut), metadata={"description": "newest first"})
    next = fields.Integer(allow_none=True, metadata={"description": "`before` for the next page"})
