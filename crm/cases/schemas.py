"""Schemas of the cases API (inputs strict, outputs documented)."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..api.schemas import StrictSchema, Text, computed, related
from ..extensions import db
from ..models import CASE_STATUSES, PRIORITIES, Case
from . import lifecycle


class AssigneeField(fields.Field):
    """A staff user given by id or email; null hands the case back to the team."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None or isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and 0 < len(value) <= 254:
            return value.strip()
        raise ValidationError("give a user id, an email address or null")


class NewCaseIn(StrictSchema):
    customer_id = fields.Integer(required=True, strict=True)
    service = Text(40, load_default=None, allow_none=True,
                   metadata={"description": "service code; routing decides when omitted"})
    category = fields.String(required=True, validate=validate.Length(min=1, max=60))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = Text(20000, load_default="")
    priority = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(PRIORITIES))
    location_address = Text(300, load_default=None, allow_none=True)
    latitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-90, 90))
    longitude = fields.Float(load_default=None, allow_none=True, validate=validate.Range(-180, 180))
    contact_id = fields.Integer(load_default=None, allow_none=True, strict=True,
                                metadata={"description": "the contact that raised it"})


class CasePatch(StrictSchema):
    status = fields.String(validate=validate.OneOf(CASE_STATUSES))
    service = Text(40)
    category = Text(60)
    assignee = AssigneeField(allow_none=True, metadata={"description": "user id, email, or null"})
    public_update = fields.String(validate=validate.Length(min=1, max=20000))
    note = fields.String(validate=validate.Length(min=1, max=20000))
    reason = Text(2000, metadata={"description": "why: recorded with a status change or re-route"})

    @validates_schema
    def something_to_do(self, data, **kwargs):
        if not data:
            raise ValidationError("give at least one of status, service, assignee, public_update, note")
        if "category" in data and "service" not in data:
            raise ValidationError("category changes go with a service (re-route)", "category")


class MergeCaseIn(StrictSchema):
    into = fields.String(required=True, validate=validate.Length(min=1, max=20),
                         metadata={"description": "reference of the case to keep"})
    reason = Text(2000, load_default=None)


class SplitIn(StrictSchema):
    contact_id = fields.Integer(required=True, strict=True)
    title = Text(200, load_default=None)
    service = Text(40, load_default=None)
    category = Text(60, load_default=None)


class AttachIn(StrictSchema):
    contact_id = fields.Integer(required=True, strict=True)


class CaseListArgs(Schema):
    service = Text(40, load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(CASE_STATUSES + ("open_all",)))
    at_risk = fields.Boolean(load_default=False)
    assigned = fields.String(load_default=None, validate=validate.OneOf(["me", "nobody"]))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class NearbyArgs(Schema):
    category = fields.String(required=True, validate=validate.Length(min=1, max=60))
    lat = fields.Float(load_default=None, validate=validate.Range(-90, 90))
    long = fields.Float(load_default=None, validate=validate.Range(-180, 180))
    address = Text(300, load_default=None)
    radius = fields.Float(load_default=150, validate=validate.Range(1, 5000))


class EventOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    actor = related("actor.name")
    from_value = fields.String(data_key="from", allow_none=True)
    to_value = fields.String(data_key="to", allow_none=True)
    body = fields.String(allow_none=True)
    public = fields.Boolean()
    occurred_at = fields.DateTime()


class AssigneeOut(Schema):
    id = fields.Integer()
    name = fields.String()


class LocationOut(Schema):
    address = fields.String(allow_none=True)
    lat = fields.Float(allow_none=True)
    long = fields.Float(allow_none=True)


def _location(case: Case):
    if case.location_address or case.latitude is not None:
        return {"address": case.location_address, "lat": case.latitude, "long": case.longitude}
    return None


def _merged_into(case: Case):
    kept = db.session.get(Case, case.merged_into_id) if case.merged_into_id else None
    return kept.reference if kept else None


class CaseSummaryOut(Schema):
    """A case as a row of a work list."""

    reference = fields.String()
    title = fields.String()
    category = fields.String()
    status = fields.String()
    priority = fields.String()
    service = fields.String(attribute="service.code")
    assignee = fields.Nested(AssigneeOut, allow_none=True)
    sla_due_at = fields.DateTime(allow_none=True)
    sla_at_risk = fields.Boolean()
    sla_breached = fields.Boolean()
    created_at = fields.DateTime()


class CaseOut(CaseSummaryOut):
    """A case with its history (staff see notes and public updates)."""

    customer_id = fields.Integer()
    customer_name = fields.String(attribute="customer.name")
    service_name = fields.String(attribute="service.name")
    queue = related("queue.code")
    description = fields.String()
    source_channel = fields.String(allow_none=True)
    location = computed(fields.Nested(LocationOut, allow_none=True), _location)
    sla_hours = fields.Integer(allow_none=True)
    first_response_due_at = fields.DateTime(allow_none=True)
    first_responded_at = fields.DateTime(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    merged_into = computed(fields.String(allow_none=True, metadata={"description": "reference of the kept case"}),
                           _merged_into)
    allowed_transitions = computed(fields.List(fields.String()), lifecycle.allowed_next)
    events = fields.List(fields.Nested(EventOut))


class CaseListOut(Schema):
    items = fields.List(fields.Nested(CaseSummaryOut))
    page = fields.Integer()
    per_page = fields.Integer()
    has_next = fields.Boolean()


class ServiceOut(Schema):
    code = fields.String()
    name = fields.String()
    categories = computed(fields.List(fields.String()), lambda s: [c.code for c in s.categories if c.active])
    sla_hours = fields.Integer()


class ServiceList(Schema):
    items = fields.List(fields.Nested(ServiceOut))
