"""Staff edits of a customer's contact details: names, emails, phones, addresses, the main ones, and verification."""
from typing import Optional

from ..audit import audit
from ..errors import NotFound, ValidationFailed
from ..models import Address, Customer, CustomerIdentity, utcnow
from .identity import (
    add_address, add_identity, mark_verified, normalise_email, normalise_phone, normalise_postcode,
    postcode_key, set_name,
)

EDITABLE_KINDS = ("email", "phone")


def _identity_of(customer: Customer, identity_id: int) -> CustomerIdentity:
    identity = next((i for i in customer.identities if i.id == identity_id), None)
    if identity is None:
        raise NotFound("That detail is not on this record")
    return identity


def _address_of(customer: Customer, address_id: int) -> Address:
    address = next((a for a in customer.addresses if a.id == address_id), None)
    if address is None:
        raise NotFound("That address is not on this record")
    return address


def rename(customer: Customer, name: str, actor) -> None:
    """Correct the customer's name."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed("Enter the customer's name (up to 200 characters)", {"name": ["required"]})
    before = customer.name
    set_name(customer, name)
    audit(actor, "customer.rename", "customer", customer.id, before=before, after=customer.name)


def add_contact_detail(customer: Customer, kind: str, raw: str, actor, confirmed: bool = False,
                       main: bool = False) -> CustomerIdentity:
    """Add an email or phone typed by staff; `confirmed` when they checked it with the caller."""
    if kind not in EDITABLE_KINDS:
        raise ValidationFailed("Choose email or phone", {"kind": ["email or phone"]})
    value = normalise_email(raw) if kind == "email" else normalise_phone(raw)
    identity = add_identity(customer, kind, value, verified=confirmed, source="staff")
    if main:
        set_main_identity(customer, identity.id, actor, audited=False)
    audit(actor, "customer.add_identity", "customer", customer.id, kind=kind, value=value, verified=confirmed)
    return identity


def set_main_identity(customer: Customer, identity_id: int, actor, audited: bool = True) -> CustomerIdentity:
    """Make one email (or phone) the main one of its kind."""
    identity = _identity_of(customer, identity_id)
    if identity.kind not in EDITABLE_KINDS:
        raise ValidationFailed("Only an email or phone can be main", {"identity": ["email or phone"]})
    for other in customer.identities:
        if other.kind == identity.kind:
            other.main = other is identity
    if audited:
        audit(actor, "customer.main_identity", "customer", customer.id, kind=identity.kind, value=identity.value)
    return identity


def confirm_identity(customer: Customer, identity_id: int, actor) -> CustomerIdentity:
    """Record that staff confirmed this detail with the customer on a call: it is now verified."""
    identity = _identity_of(customer, identity_id)
    mark_verified(identity)
    identity.source = identity.source or "staff"
    audit(actor, "customer.confirm_identity", "customer", customer.id, kind=identity.kind, value=identity.value)
    return identity


def remove_identity(customer: Customer, identity_id: int, actor) -> None:
    """Take an email or phone off the record (a wrong or stale detail); a portal sign-in stays."""
    identity = _identity_of(customer, identity_id)
    if identity.kind not in EDITABLE_KINDS:
        raise ValidationFailed("Only an email or phone can be removed here", {"identity": ["email or phone"]})
    from ..extensions import db  # noqa: PLC0415

    was_main = identity.main
    customer.identities.remove(identity)
    db.session.delete(identity)
    if was_main:
        rest = [i for i in customer.identities if i.kind == identity.kind]
        if rest:
            rest[0].main = True
    audit(actor, "customer.remove_identity", "customer", customer.id, kind=identity.kind, value=identity.value)


def add_contact_address(customer: Customer, fields: dict, actor, main: bool = False) -> Address:
    """Add a postal address."""
    if not any((fields.get(k) or "").strip() for k in ("line1", "town", "postcode")):
        raise ValidationFailed("Enter at least the first line, town or postcode", {"line1": ["required"]})
    address = add_address(customer, **{k: fields.get(k) for k in ("line1", "line2", "town", "postcode")})
    from ..extensions import db  # noqa: PLC0415

    db.session.flush()
    if main:
        set_main_address(customer, address.id, actor, audited=False)
    audit(actor, "customer.add_address", "customer", customer.id, address=address.one_line())
    return address


def update_address(customer: Customer, address_id: int, fields: dict, actor) -> Address:
    """Correct an address's lines, town or postcode."""
    address = _address_of(customer, address_id)
    before = address.one_line()
    for key in ("line1", "line2", "town"):
        value = (fields.get(key) or "").strip()
        setattr(address, key, value[:200] or None)
    postcode: Optional[str] = (fields.get("postcode") or "").strip()
    address.postcode = normalise_postcode(postcode) if postcode else None
    address.postcode_key = postcode_key(postcode) if postcode else None
    audit(actor, "customer.update_address", "customer", customer.id, before=before, after=address.one_line())
    return address


def set_main_address(customer: Customer, address_id: int, actor, audited: bool = True) -> Address:
    """Make one address the main one."""
    address = _address_of(customer, address_id)
    for other in customer.addresses:
        other.main = other is address
    if audited:
        audit(actor, "customer.main_address", "customer", customer.id, address=address.one_line())
    customer.updated_at = utcnow()
    return address
