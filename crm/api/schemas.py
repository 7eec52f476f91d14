"""Shared marshmallow schemas of the API (inputs validated, outputs documented)."""
from datetime import timezone

from typing import Callable

from marshmallow import Schema, fields, missing, validate, validates_schema, ValidationError, RAISE

from ..customers.timeline import describe_event
from ..models import CHANNELS, DIRECTIONS, IDENTITY_SOURCES, OUTCOMES, PRIORITIES


class StrictSchema(Schema):
    """Refuse unknown fields, so a typo is a 422 rather than silently ignored."""

    class Meta:
        unknown = RAISE


Text = lambda n, **kw: fields.String(validate=validate.Length(max=n), **kw)  # noqa: E731
AwareDateTime = lambda **kw: fields.AwareDateTime(default_timezone=timezone.utc, **kw)  # noqa: E731


def computed(field: fields.Field, compute: Callable[[object], object]) -> fields.Field:
    """Make an output field whose value is compute(obj), dumped and documented as `field` (a list, a string…)."""
    field.get_value = lambda obj, attr, accessor=None, default=missing: compute(obj)
    return field


def related(path: str, field=fields.String, **kw) -> fields.Field:
    """Make an output field read through a relation ("actor.name") that is null when the relation is empty."""
    return field(attribute=path, allow_none=True, dump_default=None, **kw)


class AddressIn(StrictSchema):
    line1 = Text(200)
    line2 = Text(200)
    town = Text(100)
    postcode = Text(12)
    uprn = fields.String(validate=validate.Regexp(r"^\d{1,12}$"))


class CustomerIn(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = Text(254, allow_none=True)
    phone = Text(40, allow_none=True)
    address = fields.Nested(AddressIn, allow_none=True)


class CustomerPatch(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    add_email = Text(254)
    add_phone = Text(40)
    address = fields.Nested(AddressIn)


class IdentityOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    value = fields.String()
    verified = fields.Boolean()
    source = fields.String(allow_none=True, metadata={"description": "where it came from: " + ", ".join(IDENTITY_SOURCES)})
    main = fields.Boolean()
    undeliverable = fields.Boolean()


class AddressOut(Schema):
    id = fields.Integer()
    main = fields.Boolean()
    line1 = fields.String()
    line2 = fields.String()
    town = fields.String()
    postcode = fields.String()
    uprn = fields.String()


class CustomerOut(Schema):
    id = fields.Integer()
    name = fields.String()
    email = fields.String(attribute="primary_email", allow_none=True)
    phone = fields.String(attribute="primary_phone", allow_none=True)
    identities = fields.List(fields.Nested(IdentityOut))
    addresses = fields.List(fields.Nested(AddressOut))
    merged_into_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    preferred_channel = fields.String(allow_none=True)
    # Search results only: open cases and the latest contact.
    open_cases = fields.Integer()
    last_contact_at = fields.DateTime(allow_none=True)
    restricted = fields.Boolean(metadata={"description": "a restricted record (crm.visibility)"})


class CustomerList(Schema):
    items = fields.List(fields.Nested(CustomerOut))


class SearchArgs(Schema):
    q = fields.String(load_default="", validate=validate.Length(max=200))
    limit = fields.Integer(load_default=25, validate=validate.Range(min=1, max=100))


class MergeIn(StrictSchema):
    source_id = fields.Integer(required=True, metadata={"description": "customer merged away"})
    keep_name = fields.String(load_default="target", validate=validate.OneOf(["target", "source"]))


class TimelineArgs(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    before = fields.String(load_default=None, validate=validate.Length(max=200))


class TimelineEntryOut(Schema):
    """What every timeline entry has; a contact and a case event each add their own fields."""

    id = fields.Integer()
    kind = fields.String(metadata={"enum": ["contact", "case_event"]})
    channel = fields.String(allow_none=True)
    direction = fields.String(allow_none=True)
    occurred_at = fields.DateTime()
    summary = fields.String()
    case_reference = related("case.reference")
    conversation_id = fields.Integer(allow_none=True)


class ContactEntryOut(TimelineEntryOut):
    kind = fields.Constant("contact")
    category = fields.String(allow_none=True)
    outcome = fields.String()
    notes = fields.String(allow_none=True)
    handle_seconds = fields.Integer(allow_none=True)
    agent = related("agent.name")


class CaseEventEntryOut(TimelineEntryOut):
    kind = fields.Constant("case_event")
    channel = related("case.source_channel")
    direction = fields.Constant(None)
    summary = computed(fields.String(), describe_event)
    conversation_id = fields.Constant(None)
    # The event's own kind (created, routed, note…): `kind` says which sort of entry this is.
    event = computed(fields.String(), lambda event: event.kind)
    body = fields.String(allow_none=True)
    public = fields.Boolean()


class RedactedEntryOut(TimelineEntryOut):
    """An entry the viewer may know exists but not read (crm.visibility): when and what kind, never what it says."""

    kind = fields.String(attribute="source_kind")
    summary = fields.String(attribute="label")
    direction = fields.Constant(None)
    case_reference = fields.Constant(None)
    conversation_id = fields.Constant(None)
    redacted = fields.Constant(True)


class TimelineOut(Schema):
    items = fields.List(fields.Dict(), metadata={
        "description": "ContactEntryOut, CaseEventEntryOut or RedactedEntryOut, newest first"})
    next = fields.String(allow_none=True)


class CallerIn(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    phone = Text(40, allow_none=True)
    email = Text(254, allow_none=True)
    confirmed = fields.Boolean(load_default=False, metadata={
        "description": "the agent checked the caller's identity on the call: their details count as verified"})


class CaseIn(StrictSchema):
    service = Text(40, required=True)
    category = Text(60, required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = Text(20000, load_default="")
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))


class ContactIn(StrictSchema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    direction = fields.String(load_default="inbound", validate=validate.OneOf(DIRECTIONS))
    customer_id = fields.Integer()
    caller = fields.Nested(CallerIn)
    category = Text(60, allow_none=True)
    notes = Text(20000, load_default="")
    # Required: a default would count every contact that left it out as resolved at first contact.
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    started_at = AwareDateTime()
    ended_at = AwareDateTime()
    case = fields.Nested(CaseIn)
    articles = fields.List(fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1)),
                           validate=validate.Length(max=20), load_default=list,
                           metadata={"description": "ids of the help articles used with the caller"})

    @validates_schema
    def who_called(self, data, **kwargs):
        if ("customer_id" in data) == ("caller" in data):
            raise ValidationError("give exactly one of customer_id or caller", "customer_id")


class ContactOut(Schema):
    id = fields.Integer()
    customer_id = fields.Integer()
    channel = fields.String()
    direction = fields.String()
    category = fields.String(allow_none=True)
    outcome = fields.String()
    notes = fields.String(allow_none=True)
    occurred_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)
    handle_seconds = fields.Integer(allow_none=True)
    case_reference = related("case.reference")
