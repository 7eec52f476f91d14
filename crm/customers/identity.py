"""Normalise identities and resolve an inbound touch to a customer."""
import re
from functools import lru_cache
from typing import Optional

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from ..batching import flush_unless_batched, stage
from ..errors import ValidationFailed
from ..extensions import db
from ..models import Address, Customer, CustomerIdentity, CustomerNameTerm

DEFAULT_REGION = "GB"
_POSTCODE_RE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_WORD_RE = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)


@lru_cache(maxsize=4096)  # a sender's address is checked on parse and again on resolution
def normalise_email(raw: str) -> str:
    """Return the email lower-cased and checked (syntax only; no DNS lookup)."""
    try:
        result = validate_email((raw or "").strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed("Enter a valid email address", {"email": [str(exc)]}) from None
    return result.normalized.lower()


def normalise_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return the phone number in E.164, reading national numbers as UK ones."""
    try:
        number = phonenumbers.parse((raw or "").strip(), region)
    except phonenumbers.NumberParseException:
        raise ValidationFailed("Enter a valid phone number", {"phone": ["not a phone number"]}) from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationFailed("Enter a valid phone number", {"phone": ["not a possible number"]})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def try_normalise_phone(raw: str) -> Optional[str]:
    """Return the E.164 form of raw if it reads as a phone number, else None."""
    if not raw or sum(ch.isdigit() for ch in raw) < 6 or re.search(r"[A-Za-z@]", raw):
        return None
    try:
        return normalise_phone(raw)
    except ValidationFailed:
        return None


def postcode_key(raw: str) -> str:
    """Return a postcode upper-cased without spaces: the search key."""
    return re.sub(r"\s+", "", (raw or "")).upper()


def normalise_postcode(raw: str) -> Optional[str]:
    """Return a UK postcode as 'CA1 1AA', or the trimmed upper-cased text if it is not one."""
    key = postcode_key(raw)
    if not key:
        return None
    match = _POSTCODE_RE.match(key)
    return f"{match.group(1)} {match.group(2)}" if match else key


def looks_like_postcode(raw: str) -> bool:
    """Say whether raw is a whole UK postcode."""
    return bool(_POSTCODE_RE.match(postcode_key(raw)))


def name_terms(name: str) -> set[str]:
    """Return the lower-cased words of a name, the keys of name search."""
    return {w.lower()[:100] for w in _WORD_RE.findall(name or "")}


def set_name(customer: Customer, name: str) -> None:
    """Set a customer's name and keep its search terms in step."""
    customer.name = (name or "").strip() or "Unknown caller"
    wanted = name_terms(customer.name)
    customer.name_terms[:] = [t for t in customer.name_terms if t.term in wanted]
    have = {t.term for t in customer.name_terms}
    for term in sorted(wanted - have):
        customer.name_terms.append(CustomerNameTerm(term=term))


def find_by_identity(kind: str, value: str) -> Optional[Customer]:
    """Return the live customer holding this normalised identity, following merges."""
    identity = db.session.scalar(
        select(CustomerIdentity).where(CustomerIdentity.kind == kind, CustomerIdentity.value == value)
    )
    return live_customer(identity.customer) if identity else None


def live_customer(customer: Optional[Customer]) -> Optional[Customer]:
    """Follow merged_into links to the customer that now holds the record."""
    seen = set()
    while customer is not None and customer.merged_into_id and customer.id not in seen:
        seen.add(customer.id)
        customer = db.session.get(Customer, customer.merged_into_id)
    return customer


def add_identity(customer: Customer, kind: str, value: str, verified: bool = False) -> CustomerIdentity:
    """Attach a normalised identity to a customer unless it is already theirs."""
    for identity in customer.identities:
        if identity.kind == kind and identity.value == value:
            return identity
    owner = find_by_identity(kind, value)
    if owner is not None and owner.id != customer.id:
        raise ValidationFailed(
            f"That {kind} belongs to another customer",
            {kind: [f"already belongs to customer {owner.id}"]},
            code="identity_taken",
            status=409,
        )
    identity = CustomerIdentity(kind=kind, value=value, verified=verified)
    customer.identities.append(identity)
    return identity


def add_address(customer: Customer, line1=None, line2=None, town=None, postcode=None, uprn=None) -> Address:
    """Attach an address with its postcode normalised."""
    address = Address(
        line1=(line1 or "").strip() or None,
        line2=(line2 or "").strip() or None,
        town=(town or "").strip() or None,
        postcode=normalise_postcode(postcode) if postcode else None,
        postcode_key=postcode_key(postcode) if postcode else None,
        uprn=(uprn or "").strip() or None,
    )
    customer.addresses.append(address)
    return address


def create_customer(name: str, email=None, phone=None, address: Optional[dict] = None) -> Customer:
    """Make a new customer with the identities given; raises if one is already taken."""
    customer = Customer()
    set_name(customer, name)
    db.session.add(customer)
    if email:
        add_identity(customer, "email", normalise_email(email))
    if phone:
        add_identity(customer, "phone", normalise_phone(phone))
    if address:
        add_address(customer, **{k: address.get(k) for k in ("line1", "line2", "town", "postcode", "uprn")})
    db.session.flush()
    return customer


def resolve_customer(name=None, email=None, phone=None, create: bool = True,
                     owners: Optional[dict] = None) -> Optional[Customer]:
    """Match an inbound touch to a customer by email, then phone; make one when nothing matches.

    Identities the touch brings that the matched customer lacks are added to them, unless
    they belong to someone else (then the two may be the same person: staff decide by merging).
    `owners` maps a kind to the live holder of that identity (None: nobody) when the caller
    has looked it up already, as a batch import does for all its senders at once.
    """
    email_value = normalise_email(email) if email else None
    phone_value = normalise_phone(phone) if phone else None
    owners = dict(owners or {})  # kind -> holder of the identity (None: nobody), each looked up once
    customer = None
    for kind, value in (("email", email_value), ("phone", phone_value)):
        if customer is None and value:
            if kind not in owners:
                owners[kind] = find_by_identity(kind, value)
            customer = owners[kind]
    if customer is None:
        if not create:
            return None
        customer = Customer()
        set_name(customer, name or email_value or phone_value or "Unknown caller")
        stage(customer, flush=False)  # flushed below with its identities
    elif name and customer.name in ("Unknown caller", email_value, phone_value):
        set_name(customer, name)
    for kind, value in (("email", email_value), ("phone", phone_value)):
        if not value:
            continue
        if kind not in owners:
            owners[kind] = find_by_identity(kind, value)
        if owners[kind] is None and not any(i.kind == kind and i.value == value for i in customer.identities):
            customer.identities.append(CustomerIdentity(kind=kind, value=value, verified=False))
    flush_unless_batched()
    return customer
