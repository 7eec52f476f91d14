"""API: the possible-duplicates queue, merging a pair, dismissing it, and undoing a merge."""
from flask_login import current_user
from marshmallow import Schema, fields, validate

from .. import visibility
from ..auth.access import roles_required
from ..auth.roles import DUPLICATE_REVIEWERS
from ..customers.duplicates import (
    cases_held, contacts_held, dismiss_duplicate, get_duplicate, list_duplicates, merge_duplicate,
)
from ..customers.identity import live_customer
from ..customers.merge import latest_merge_into, unmerge
from ..errors import NotFound
from ..extensions import db
from ..models import DUPLICATE_STATUSES
from . import api_blueprint
from .customers import get_customer_or_404
from .schemas import CustomerOut, IdentityOut, StrictSchema, Text

blp = api_blueprint("duplicates", __name__, "Possible duplicate customers: review, merge, dismiss, unmerge")


class DuplicateArgs(Schema):
    status = fields.String(load_default="open", validate=validate.OneOf(DUPLICATE_STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    before = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**62))


class SideIdentityOut(IdentityOut):
    class Meta:
        exclude = ("undeliverable",)  # not in the published shape of a pair


class SideAddressOut(Schema):
    id = fields.Integer()
    text = fields.Function(lambda address: address.one_line(), metadata={"type": "string"})
    main = fields.Boolean()


class SideOut(Schema):
    """One record of a pair as staff compare it: details with their source, and how much history it holds."""
    id = fields.Integer()
    name = fields.String()
    merged_into_id = fields.Integer(allow_none=True)
    identities = fields.List(fields.Nested(SideIdentityOut))
    addresses = fields.List(fields.Nested(SideAddressOut))
    contacts = fields.Function(contacts_held, metadata={"type": "integer"})
    cases = fields.Function(cases_held, metadata={"type": "integer"})
    created_at = fields.DateTime()


class DuplicateOut(Schema):
    """A queued pair side by side, with the reasons it was queued."""
    id = fields.Integer()
    status = fields.String()
    source = fields.String(allow_none=True)
    reasons = fields.List(fields.Dict(), metadata={"description": "kind, value, why"})
    created_at = fields.DateTime()
    customer = fields.Nested(SideOut, metadata={"description": "the record made for the touch"})
    other = fields.Nested(SideOut, metadata={"description": "the existing record it pointed at"})


class DuplicateList(Schema):
    items = fields.List(fields.Nested(DuplicateOut))


class MainIn(StrictSchema):
    email = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=2**62))
    phone = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=2**62))
    address = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=2**62))


class DuplicateMergeIn(StrictSchema):
    keep = fields.String(load_default="other", validate=validate.OneOf(["other", "customer"]),
                         metadata={"description": "which record survives: the existing one (other) or the new one"})
    keep_name = fields.String(load_default="target", validate=validate.OneOf(["target", "source"]),
                              metadata={"description": "target: the kept record's name; source: the other's"})
    main = fields.Nested(MainIn, load_default=None, metadata={"description": "identity/address ids to make main"})


class DismissIn(StrictSchema):
    note = Text(500, load_default="")


class UnmergeIn(StrictSchema):
    reason = Text(2000, load_default="")


def _visible(row):
    """Refuse a pair unless the user may see both records."""
    visibility.check_customer(current_user, row.customer)
    visibility.check_customer(current_user, row.other)
    return row


@blp.get("/duplicates")
@roles_required(*DUPLICATE_REVIEWERS)
@blp.arguments(DuplicateArgs, location="query")
@blp.response(200, DuplicateList)
def index(args):
    """List queued pairs of possible duplicates (open by default), newest first."""
    rows = [row for row in list_duplicates(args["status"], args["limit"], args["before"])
            if visibility.can_see_customer(current_user, row.customer)
            and visibility.can_see_customer(current_user, row.other)]
    return {"items": rows}


@blp.get("/duplicates/<int:duplicate_id>")
@roles_required(*DUPLICATE_REVIEWERS)
@blp.response(200, DuplicateOut)
def read(duplicate_id):
    """Return one pair side by side with the reasons it was queued."""
    return _visible(get_duplicate(duplicate_id))


@blp.post("/duplicates/<int:duplicate_id>/merge")
@roles_required(*DUPLICATE_REVIEWERS)
@blp.arguments(DuplicateMergeIn)
@blp.response(200, CustomerOut)
def merge(data, duplicate_id):
    """Merge the pair into the record `keep` names, choosing the main name and details."""
    row = _visible(get_duplicate(duplicate_id))
    a, b = live_customer(row.customer), live_customer(row.other)
    source, target = (a, b) if data["keep"] == "other" else (b, a)
    visibility.check_customer_merge(current_user, source, target)
    merged = merge_duplicate(row, current_user, keep=data["keep"], keep_name=data["keep_name"],
                             main=data.get("main") or {})
    db.session.commit()
    return merged


@blp.post("/duplicates/<int:duplicate_id>/dismiss")
@roles_required(*DUPLICATE_REVIEWERS)
@blp.arguments(DismissIn)
@blp.response(200, DuplicateOut)
def dismiss(data, duplicate_id):
    """Record that the pair are different people; it is not queued again."""
    row = dismiss_duplicate(_visible(get_duplicate(duplicate_id)), current_user, data["note"])
    db.session.commit()
    return row


@blp.post("/customers/<int:customer_id>/unmerge")
@roles_required(*DUPLICATE_REVIEWERS)
@blp.arguments(UnmergeIn)
@blp.response(200, CustomerOut)
def unmerge_customer(data, customer_id):
    """Undo the merge that folded this (merged-away) customer into another, within the allowed period."""
    customer = get_customer_or_404(customer_id)
    record = latest_merge_into(customer)
    if record is None or customer.merged_into_id != record.target_id:
        raise NotFound(f"Customer {customer_id} has no merge to undo", code="no_merge")
    visibility.check_customer(current_user, db.session.get(type(customer), record.target_id))
    restored = unmerge(record, current_user, data["reason"])
    db.session.commit()
    return restored

