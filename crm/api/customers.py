"""API: customers, their search, merge and timeline."""
from flask_login import current_user
from marshmallow import Schema, fields, validate

from .. import visibility
from ..auth.access import roles_required
from ..auth.roles import FRONT_LINE
from ..customers.identity import (
    add_address, add_identity, create_customer, live_customer, normalise_email, normalise_phone,
    set_name,
)
from ..customers.merge import merge_customers
from ..customers.search import search_customers
from ..customers.timeline import timeline_page
from ..customers.sensitivity import set_restricted, set_vulnerability
from ..errors import Forbidden, NotFound
from ..extensions import db
from ..models import Customer
from . import api_blueprint
from .schemas import (
    CaseEventEntryOut, ContactEntryOut, CustomerIn, CustomerList, CustomerOut, CustomerPatch, MergeIn,
    RedactedEntryOut, SearchArgs, StrictSchema, TimelineArgs, TimelineOut,
)

blp = api_blueprint("customers", __name__, "Customers, identities and the unified timeline",
                    "/customers")
# Each kind of timeline entry has its own shape.
ENTRY_SHAPES = {"contact": ContactEntryOut(), "case_event": CaseEventEntryOut(), "redacted": RedactedEntryOut()}


def get_customer_or_404(customer_id: int) -> Customer:
    """Return the customer (not a merged-away record's ghost) or raise NotFound."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}")
    return customer


@blp.get("")
@roles_required()
@blp.arguments(SearchArgs, location="query")
@blp.response(200, CustomerList)
def search(args):
    """Find customers by name, email, phone, postcode or case reference."""
    return {"items": visibility.search_results(current_user, args["q"], search_customers(args["q"], args["limit"]))}


@blp.post("")
@roles_required(*FRONT_LINE)
@blp.arguments(CustomerIn)
@blp.response(201, CustomerOut)
def create(data):
    """Create a customer with optional email, phone and address."""
    customer = create_customer(data["name"], data.get("email"), data.get("phone"), data.get("address"))
    db.session.commit()
    return customer


@blp.get("/<int:customer_id>")
@roles_required()
@blp.response(200, CustomerOut)
def read(customer_id):
    """Return a customer with identities and addresses."""
    customer = visibility.check_customer(current_user, get_customer_or_404(customer_id))
    return customer


@blp.patch("/<int:customer_id>")
@roles_required(*FRONT_LINE)
@blp.arguments(CustomerPatch)
@blp.response(200, CustomerOut)
def patch(data, customer_id):
    """Rename a customer, or add an email, phone or address."""
    customer = live_customer(get_customer_or_404(customer_id))
    visibility.check_customer(current_user, customer)
    if "name" in data:
        set_name(customer, data["name"])
    if data.get("add_email"):
        add_identity(customer, "email", normalise_email(data["add_email"]), source="staff")
    if data.get("add_phone"):
        add_identity(customer, "phone", normalise_phone(data["add_phone"]), source="staff")
    if data.get("address"):
        add_address(customer, **data["address"])
    db.session.commit()
    return customer


@blp.post("/<int:customer_id>/merge")
@roles_required(*FRONT_LINE)
@blp.arguments(MergeIn)
@blp.response(200, CustomerOut)
def merge(data, customer_id):
    """Merge customer `source_id` into this one, moving everything it holds."""
    target = get_customer_or_404(customer_id)
    source = get_customer_or_404(data["source_id"])
    visibility.check_customer_merge(current_user, source, target)
    merged = merge_customers(source, target, current_user, keep_name=data["keep_name"])
    db.session.commit()
    return merged


@blp.get("/<int:customer_id>/timeline")
@roles_required()
@blp.arguments(TimelineArgs, location="query")
@blp.response(200, TimelineOut)
def timeline(args, customer_id):
    """Return the customer's contacts and case events, newest first, with a cursor."""
    customer = visibility.check_customer(current_user, get_customer_or_404(customer_id))
    entries, next_cursor = timeline_page(customer.id, args["limit"], args["before"])
    entries = visibility.redact_timeline(current_user, entries)
    return {"items": [ENTRY_SHAPES[kind].dump(row) for kind, row in entries], "next": next_cursor}


class SensitivityIn(StrictSchema):
    vulnerability_notes = fields.String(allow_none=True, validate=validate.Length(max=5000))
    restricted = fields.Boolean()


class SensitivityOut(Schema):
    id = fields.Integer()
    restricted = fields.Boolean()
    vulnerability_notes = fields.String(allow_none=True)


@blp.put("/<int:customer_id>/sensitivity")
@roles_required()
@blp.arguments(SensitivityIn)
@blp.response(200, SensitivityOut)
def sensitivity(data, customer_id):
    """Set or clear vulnerability notes and the restricted mark (staff who need them; audited)."""
    customer = visibility.check_customer(current_user, get_customer_or_404(customer_id))
    if "vulnerability_notes" in data:
        set_vulnerability(current_user, customer, data["vulnerability_notes"])
    if "restricted" in data:
        set_restricted(current_user, customer, data["restricted"])
    if not visibility.can_edit_vulnerability(current_user, customer):
        raise Forbidden("Only staff who need vulnerability notes may change them")
    db.session.commit()
    return customer
