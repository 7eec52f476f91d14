"""Find customers from one search box: name, email, phone, postcode or case reference."""
import re

from sqlalchemy import select, exists, func

from ..cases.lifecycle import DONE_STATUSES
from ..extensions import db
from ..models import Address, Case, Contact, Customer, CustomerIdentity, CustomerNameTerm
from .identity import (
    live_customer, looks_like_postcode, name_terms, postcode_key, try_normalise_phone,
)

CASE_REFERENCE_RE = re.compile(r"^\s*CAS-?(\d{1,9})\s*$", re.IGNORECASE)
OUTWARD_CODE_RE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?(\s*[0-9][A-Z]?)?$")
HIGH = "\uffff"  # upper bound of a prefix range on an indexed text column
RARITY_PROBE = 1000  # name terms counted per word to tell a rare word from a common one


def search_customers(query: str, limit: int = 25) -> list[Customer]:
    """Return the customers the query names, best matches first, each with `open_cases` and `last_contact_at`."""
    return with_summaries(_search(query, limit))


def with_summaries(customers: list[Customer]) -> list[Customer]:
    """Set `open_cases` and `last_contact_at` on each customer: two grouped look-ups for the whole list."""
    ids = [c.id for c in customers]
    if not ids:
        return customers
    open_counts = dict(db.session.execute(
        select(Case.customer_id, func.count(Case.id))
        .where(Case.customer_id.in_(ids), Case.status.notin_(DONE_STATUSES))
        .group_by(Case.customer_id)).all())
    latest = dict(db.session.execute(
        select(Contact.customer_id, func.max(Contact.occurred_at))
        .where(Contact.customer_id.in_(ids)).group_by(Contact.customer_id)).all())
    for customer in customers:
        customer.open_cases = open_counts.get(customer.id, 0)
        customer.last_contact_at = latest.get(customer.id)
    return customers


def _search(query: str, limit: int) -> list[Customer]:
    """Return the customers the query names, best matches first; each way is an index look-up."""
    q = (query or "").strip()
    if not q:
        return []
    limit = max(1, min(limit, 100))

    reference = CASE_REFERENCE_RE.match(q)
    if reference:
        return _by_case_reference(int(reference.group(1)))
    if "@" in q:
        return _by_identity_prefix("email", q.lower(), limit)
    phone = try_normalise_phone(q)
    if phone:
        return _live(db.session.scalars(
            select(Customer).join(CustomerIdentity).where(
                CustomerIdentity.kind == "phone", CustomerIdentity.value == phone)
        ))
    if looks_like_postcode(q):
        return _by_postcode(postcode_key(q), exact=True, limit=limit)
    if OUTWARD_CODE_RE.match(q.upper()) and any(ch.isdigit() for ch in q):
        return _by_postcode(postcode_key(q), exact=False, limit=limit)
    return _by_name(q, limit)


def _live(customers) -> list[Customer]:
    """Drop duplicates and follow merges, keeping order."""
    seen, out = set(), []
    for customer in customers:
        customer = live_customer(customer)
        if customer is not None and customer.id not in seen:
            seen.add(customer.id)
            out.append(customer)
    return out


def _by_case_reference(number: int) -> list[Customer]:
    case = db.session.scalar(select(Case).where(Case.reference == f"CAS-{number:06d}"))
    return _live([case.customer]) if case else []


def _by_identity_prefix(kind: str, prefix: str, limit: int) -> list[Customer]:
    rows = db.session.scalars(
        select(Customer).join(CustomerIdentity).where(
            CustomerIdentity.kind == kind,
            CustomerIdentity.value >= prefix,
            CustomerIdentity.value < prefix + HIGH,
        ).order_by(CustomerIdentity.value).limit(limit)
    )
    return _live(rows)


def _by_postcode(key: str, exact: bool, limit: int) -> list[Customer]:
    condition = (Address.postcode_key == key) if exact else (
        (Address.postcode_key >= key) & (Address.postcode_key < key + HIGH))
    rows = db.session.scalars(
        select(Customer).join(Address).where(condition, Customer.merged_into_id.is_(None))
        .order_by(Address.postcode_key, Customer.id).limit(limit * 2)
    )
    return _live(rows)[:limit]


def _term_count(prefix: str, cap: int) -> int:
    """Count name terms starting with prefix, stopping at cap (a short index-only range)."""
    matching = (select(CustomerNameTerm.customer_id)
                .where(CustomerNameTerm.term >= prefix, CustomerNameTerm.term < prefix + HIGH)
                .limit(cap).subquery())
    return db.session.scalar(select(func.count()).select_from(matching))


def _by_name(q: str, limit: int) -> list[Customer]:
    """Every word of the query must start a word of the name ("jo smi" finds John Smith)."""
    words = sorted(name_terms(q), key=len, reverse=True)
    if not words:
        return []
    if len(words) > 1:
        # Walk the rarest word's range and check the others per customer: "harry dow" reads
        # the few hundred "dow…" entries, not the thousands of "harry…" ones.
        words.sort(key=lambda word: _term_count(word, RARITY_PROBE))
    driver, others = words[0], words[1:]
    stmt = (
        select(Customer)
        .join(CustomerNameTerm, CustomerNameTerm.customer_id == Customer.id)
        .where(
            CustomerNameTerm.term >= driver,
            CustomerNameTerm.term < driver + HIGH,
            Customer.merged_into_id.is_(None),
        )
    )
    for word in others:
        other = db.aliased(CustomerNameTerm)
        stmt = stmt.where(exists().where(
            other.customer_id == Customer.id, other.term >= word, other.term < word + HIGH))
    stmt = stmt.order_by(CustomerNameTerm.term, CustomerNameTerm.customer_id).limit(limit * 2)
    found = _live(db.session.scalars(stmt))[:limit]
    # Exact whole-name matches first, then alphabetical.
    lowered = q.lower()
    return sorted(found, key=lambda c: (c.name.lower() != lowered, c.name.lower(), c.id))
