"""Normalise identities and resolve an inbound touch to a customer."""
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import and_, delete, event, insert, inspect, select

from ..batching import flush_unless_batched, stage
from ..errors import ValidationFailed
from ..extensions import db
from ..merging import live_record
from ..models import Address, Customer, CustomerIdentity, CustomerNameTerm, PossibleDuplicate, utcnow

DEFAULT_REGION = "GB"
_POSTCODE_RE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_WORD_RE = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)


# Special-use names (RFC 2606, 6761, 6762, 7686): an address there is well formed but no mail can
# reach it. (.example is reserved too, but the demo and tests live there and a test relay takes it.)
RESERVED_MAIL_TLDS = frozenset({"invalid", "test", "localhost", "local", "onion", "arpa"})


def reserved_mail_domain(address: str) -> bool:
    """Say whether an address is at a special-use domain that can never receive mail."""
    domain = (address or "").rpartition("@")[2].rstrip(".").lower()
    return "." in domain and domain.rsplit(".", 1)[1] in RESERVED_MAIL_TLDS


@lru_cache(maxsize=4096)  # a sender's address is checked on parse and again on resolution
def normalise_email(raw: str) -> str:
    """Return the email lower-cased and checked (syntax only; no DNS lookup)."""
    value = (raw or "").strip()
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        if not reserved_mail_domain(value):
            raise ValidationFailed("Enter a valid email address", {"email": [str(exc)]}) from None
        # The checker refuses special-use names outright: check the rest of the address under a stand-in.
        tld = value.rstrip(".").rsplit(".", 1)[1]
        try:
            result = validate_email(value.rstrip(".")[: -len(tld)] + "example", check_deliverability=False)
        except EmailNotValidError as inner:
            raise ValidationFailed("Enter a valid email address", {"email": [str(inner)]}) from None
        return result.normalized.lower()[: -len("example")] + tld.lower()
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


_RENAMED = "customers_renamed"  # session.info: {id(customer): customer} named since the last flush


def set_name(customer: Customer, name: str) -> None:
    """Set a customer's name; its search terms are made to match when the session next flushes."""
    customer.name = (name or "").strip() or "Unknown caller"
    db.session.info.setdefault(_RENAMED, {})[id(customer)] = customer


def _write_name_terms(session, _flush_context) -> None:
    """After a flush, make the search terms of each renamed customer match its name.

    A derived table, kept by the session rather than as an object per word: a batch of new
    customers costs one INSERT, and a customer inserted by this flush needs no look-up.
    """
    renamed = session.info.pop(_RENAMED, None)
    if not renamed:
        return
    written, looked_up, later = {}, [], {}
    for key, customer in renamed.items():
        state = inspect(customer)
        if state.pending:  # inserted by this flush (pending until it ends): no terms stored yet
            written[customer.id] = customer
        elif state.persistent:
            written[customer.id] = customer
            looked_up.append(customer.id)
        else:
            later[key] = customer  # not in the session yet: its flush is still to come
    if later:
        session.info[_RENAMED] = later
    if not written:
        return
    table = CustomerNameTerm.__table__
    connection = session.connection()
    held = {customer_id: set() for customer_id in written}
    looked_up.sort()
    for start in range(0, len(looked_up), 500):
        for customer_id, term in connection.execute(select(table.c.customer_id, table.c.term).where(
                table.c.customer_id.in_(looked_up[start:start + 500]))):
            held[customer_id].add(term)
    rows = []
    for customer_id, customer in written.items():
        wanted = name_terms(customer.name)
        if held[customer_id] - wanted:
            connection.execute(delete(table).where(and_(table.c.customer_id == customer_id,
                                                        table.c.term.in_(held[customer_id] - wanted))))
        rows += [{"customer_id": customer_id, "term": term} for term in sorted(wanted - held[customer_id])]
    if rows:
        connection.execute(insert(table), rows)


def _forget_renamed(session, *_args) -> None:
    if not session.in_nested_transaction():  # a SAVEPOINT ended: the transaction goes on
        session.info.pop(_RENAMED, None)


def install(session_factory) -> None:
    """Hook the session (once): name search terms follow renames at flush; a commit or rollback ends the list."""
    for name, listener in (("after_flush", _write_name_terms), ("after_commit", _forget_renamed),
                           ("after_rollback", _forget_renamed)):
        if not event.contains(session_factory, name, listener):
            event.listen(session_factory, name, listener)


def find_by_identity(kind: str, value: str) -> Optional[Customer]:
    """Return the live customer holding this normalised identity, following merges."""
    identity = db.session.scalar(
        select(CustomerIdentity).where(CustomerIdentity.kind == kind, CustomerIdentity.value == value)
    )
    return live_customer(identity.customer) if identity else None


def live_customer(customer: Optional[Customer]) -> Optional[Customer]:
    """Follow merged_into links to the customer that now holds the record."""
    return live_record(customer)


def add_identity(customer: Customer, kind: str, value: str, verified: bool = False,
                 source: Optional[str] = None) -> CustomerIdentity:
    """Attach a normalised identity to a customer unless it is already theirs."""
    for identity in customer.identities:
        if identity.kind == kind and identity.value == value:
            if verified and not identity.verified:
                mark_verified(identity)
            return identity
    owner = find_by_identity(kind, value)
    if owner is not None and owner.id != customer.id:
        raise ValidationFailed(
            f"That {kind} belongs to another customer",
            {kind: [f"already belongs to customer {owner.id}"]},
            code="identity_taken",
            status=409,
        )
    identity = _new_identity(customer, kind, value, verified, source)
    customer.identities.append(identity)
    return identity


def _new_identity(customer: Customer, kind: str, value: str, verified: bool, source: Optional[str]):
    """Return a new identity row; the first of its kind on the record is the main one."""
    first = not any(i.kind == kind for i in customer.identities)
    # Staged: in a batch import it takes its id up front, so the batch's identities go in one INSERT.
    return stage(CustomerIdentity(kind=kind, value=value, verified=verified, source=source,
                                  verified_at=utcnow() if verified else None, main=first and kind in ("email", "phone")),
                 flush=False)


def mark_verified(identity: CustomerIdentity) -> None:
    """Record that an identity has been proved (a sign-in link, staff on a call, a trusted import)."""
    identity.verified = True
    identity.verified_at = identity.verified_at or utcnow()


def set_case_contact(case, email: Optional[str] = None, phone: Optional[str] = None) -> None:
    """Keep on the case the email and phone the resident gave for it: its mail goes there."""
    if email:
        try:
            case.contact_email = normalise_email(email)
        except ValidationFailed:
            pass
    if phone:
        case.contact_phone = try_normalise_phone(phone)


def display_phone(value: Optional[str]) -> str:
    """Return a stored E.164 number the way people read it: UK numbers nationally (07700 900002)."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return value
    if number.country_code == 44:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def add_address(customer: Customer, line1=None, line2=None, town=None, postcode=None, uprn=None) -> Address:
    """Attach an address with its postcode normalised."""
    address = Address(
        line1=(line1 or "").strip() or None,
        line2=(line2 or "").strip() or None,
        town=(town or "").strip() or None,
        postcode=normalise_postcode(postcode) if postcode else None,
        postcode_key=postcode_key(postcode) if postcode else None,
        uprn=(uprn or "").strip() or None,
        main=not customer.addresses,
    )
    customer.addresses.append(address)
    return address


def create_customer(name: str, email=None, phone=None, address: Optional[dict] = None, *,
                    source: Optional[str] = "staff", verified: bool = False) -> Customer:
    """Make a new customer with the identities given; raises if one is already taken."""
    customer = Customer()
    set_name(customer, name)
    db.session.add(customer)
    if email:
        add_identity(customer, "email", normalise_email(email), verified=verified, source=source)
    if phone:
        add_identity(customer, "phone", normalise_phone(phone), verified=verified, source=source)
    if address:
        add_address(customer, **{k: address.get(k) for k in ("line1", "line2", "town", "postcode", "uprn")})
    db.session.flush()
    return customer


# Names a record gets when nobody said who they are: they neither agree nor disagree with a name.
PLACEHOLDER_NAMES = frozenset({"unknown caller", "open311 reporter", "unknown"})
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "rev"})


@dataclass
class Resolution:
    """Who a touch was joined to, and on what evidence.

    `matched` is "new" (a record made for this touch), "verified" (the touch or the identity it
    matched is verified), "agreeing" (several claimed identifiers agree) or "claimed" (one claimed
    identifier with nothing against it: the console warns before it shows the history).
    """

    customer: Customer
    matched: str
    duplicates: list = field(default_factory=list)


def _name_words(name: Optional[str]) -> list[str]:
    words = [w.lower() for w in _WORD_RE.findall(name or "")]
    return [w for w in words if w not in _TITLES]


def is_placeholder_name(name: Optional[str], *identifiers) -> bool:
    """Say whether a name says nothing about who someone is (none, "Unknown caller", an address)."""
    value = (name or "").strip().lower()
    return not value or value in PLACEHOLDER_NAMES or value in {i.lower() for i in identifiers if i}


def names_agree(given: Optional[str], held: Optional[str]) -> Optional[bool]:
    """Say whether two names are one person's (True), different (False), or cannot tell (None).

    Word order and case do not matter ("Doe, Jane"); an initial stands for a first name ("J Doe");
    a name inside the other agrees when they share two words or more; one shared word cannot tell.
    """
    a, b = _name_words(given), _name_words(held)
    if not a or not b:
        return None
    if sorted(a) == sorted(b):
        return True
    if a[-1] == b[-1] and len(a) >= 2 and len(b) >= 2 and (a[0] == b[0] or (
            (len(a[0]) == 1 or len(b[0]) == 1) and a[0][0] == b[0][0])):
        return True
    small, big = (set(a), set(b)) if len(set(a)) <= len(set(b)) else (set(b), set(a))
    if small <= big:
        return True if len(small) >= 2 else None
    return False


def resolve_customer(name=None, email=None, phone=None, create: bool = True,
                     owners: Optional[dict] = None, *, source: Optional[str] = None,
                     verified: bool = False) -> Optional[Customer]:
    """Match an inbound touch to a customer on strong evidence, else make a new one (see resolve_touch)."""
    resolution = resolve_touch(name, email, phone, create=create, owners=owners, source=source, verified=verified)
    return resolution.customer if resolution else None


def resolve_touch(name=None, email=None, phone=None, *, create: bool = True, owners: Optional[dict] = None,
                  source: Optional[str] = None, verified: bool = False) -> Optional[Resolution]:
    """Join an inbound touch to an existing customer only on strong evidence, else make a new one.

    Strong evidence: the touch is verified (`verified`: a sign-in link, staff confirming on a call, a
    trusted import), or several identifiers agree (email and phone on one record; an identifier and
    the name). One claimed identifier joins only when no name contradicts it, and never against a
    different name: then a new customer is made and a PossibleDuplicate queued for staff. A claimed
    identifier nobody holds is kept only on a new record or one the touch proved; it is never added
    silently to someone else's. `owners` maps a kind to the live holder of that identity (None:
    nobody) when the caller has looked it up already, as a batch import does for all its senders.
    """
    email_value = normalise_email(email) if email else None
    phone_value = normalise_phone(phone) if phone else None
    touch = [(kind, value) for kind, value in (("email", email_value), ("phone", phone_value)) if value]
    owners = dict(owners or {})
    holders = {}
    for kind, value in touch:
        if kind not in owners:
            owners[kind] = find_by_identity(kind, value)
        holders[kind] = owners[kind]
    candidates = list({c.id: c for c in holders.values() if c is not None}.values())
    given_name = None if is_placeholder_name(name, email_value, phone_value) else name

    customer, matched = _choose(candidates, holders, touch, given_name, verified)
    if customer is None and candidates and create:
        customer = _earlier_claimant(given_name, candidates, touch)
        matched = "claimed" if customer is not None else None
    if customer is None:
        if not create:
            return None
        customer = Customer()
        set_name(customer, name or email_value or phone_value or "Unknown caller")
        stage(customer, flush=False)  # flushed below with its identities
        matched = "new"
    elif given_name and is_placeholder_name(customer.name, email_value, phone_value):
        set_name(customer, given_name)

    keeps_new = matched == "new" or verified
    for kind, value in touch:
        holder = holders[kind]
        if holder is None and keeps_new:
            if not any(i.kind == kind and i.value == value for i in customer.identities):
                customer.identities.append(_new_identity(customer, kind, value, verified, source))
        elif holder is not None and holder.id == customer.id and verified:
            for identity in customer.identities:
                if identity.kind == kind and identity.value == value:
                    mark_verified(identity)
    resolution = Resolution(customer, matched)
    for other in candidates:
        if other.id != customer.id:
            reasons = [_reason(kind, value, given_name, other) for kind, value in touch
                       if holders[kind] is not None and holders[kind].id == other.id]
            duplicate = record_possible_duplicate(customer, other, reasons, source)
            if duplicate is not None:
                resolution.duplicates.append(duplicate)
    flush_unless_batched()
    return resolution


def _choose(candidates, holders, touch, given_name, verified):
    """Return (customer, how matched) among the holders of the touch's identifiers, or (None, None)."""
    if not candidates:
        return None, None
    if verified:
        return candidates[0], "verified"  # email first: the identifier the touch proved
    best, best_key, how = None, None, None
    for candidate in candidates:
        kinds = [kind for kind, _ in touch if holders[kind] is not None and holders[kind].id == candidate.id]
        agree = names_agree(given_name, candidate.name)
        if len(kinds) < 2 and agree is False:
            continue  # one claimed identifier against a different name never joins
        values = {value for kind, value in touch if kind in kinds}
        stored_verified = any(i.verified and i.value in values for i in candidate.identities)
        key = (len(kinds), agree is True, stored_verified, kinds[0] == "email")
        if best_key is None or key > best_key:
            best, best_key = candidate, key
            how = "verified" if stored_verified else ("agreeing" if len(kinds) >= 2 or agree else "claimed")
    return best, how


def _reason(kind: str, value: str, given_name: Optional[str], other: Customer) -> dict:
    """Say why a touch's record may be the same person as `other`."""
    why = f"same {kind}" + (f"; the name given was {given_name!r}, the record says {other.name!r}"
                            if given_name and names_agree(given_name, other.name) is False else "")
    return {"kind": kind, "value": value, "why": why}


def _earlier_claimant(given_name, candidates, touch) -> Optional[Customer]:
    """Return the record an earlier touch made for this name with the same taken identifier, if any.

    Someone who gives a shared phone (or a family mailbox) under their own name gets one record of
    their own, not a new one each time; staff see the pair once in the duplicates queue.
    """
    if not given_name:
        return None
    wanted = {(kind, value) for kind, value in touch}
    with db.session.no_autoflush:  # a batch import flushes only at its end
        rows = db.session.scalars(select(PossibleDuplicate).where(
            PossibleDuplicate.other_id.in_([c.id for c in candidates]))
            .order_by(PossibleDuplicate.id.desc()).limit(50)).all()
    rows += [row for row in db.session.new if isinstance(row, PossibleDuplicate)
             and any(row.other is c for c in candidates)]
    for row in rows:
        if not any((r.get("kind"), r.get("value")) in wanted for r in row.reasons or []):
            continue
        claimant = live_customer(row.customer)
        if claimant is not None and names_agree(given_name, claimant.name):
            return claimant
    return None


def record_possible_duplicate(customer: Customer, other: Customer, reasons: list, source: Optional[str] = None):
    """Queue the pair for staff unless it is already queued or decided; return the new row or None."""
    ids = {customer.id, other.id}
    if customer.id is not None and other.id is not None:
        with db.session.no_autoflush:
            existing = db.session.scalar(select(PossibleDuplicate.id).where(
                PossibleDuplicate.customer_id.in_(ids), PossibleDuplicate.other_id.in_(ids)).limit(1))
        if existing is not None:
            return None
    pair = {id(customer), id(other)}
    for row in db.session.new:
        if isinstance(row, PossibleDuplicate) and {id(row.customer), id(row.other)} == pair:
            return None
    duplicate = PossibleDuplicate(customer=customer, other=other, reasons=reasons, source=source, status="open")
    db.session.add(duplicate)
    return duplicate
