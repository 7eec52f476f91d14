"""Resident accounts: sign-up, one-time sign-in links, passwords, the session, and their own data.

A resident account is not a staff user and never goes through Flask-Login: the resident's
session holds only the account id and its session stamp. The account reaches a Customer
only once the email address has been proved by a link sent to it, so signing up with
someone else's address shows nothing of theirs.
"""
import hashlib
import re
import secrets
from datetime import timedelta
from typing import Optional

from flask import current_app, request, session
from sqlalchemy import func, select

from ..audit import audit
from ..auth.accounts import MIN_PASSWORD_LENGTH, check_password, hash_password
from ..cases.lifecycle import STATUS_LABELS
from ..customers.identity import add_identity, live_customer, normalise_email, resolve_customer
from ..errors import NotFound, ValidationFailed
from ..extensions import db
from ..models import (
    Attachment, Case, CaseEvent, Contact, CustomerIdentity, ResidentAccount, ResidentSignInToken, utcnow,
)

LINK_LIFETIME = timedelta(hours=1)
SESSION_KEY = "resident"
ATTEMPTS_BEFORE_LOCK = 5
LOCK_MINUTES = 15
_CACHE_KEY = "crm.resident_account"  # per request (an app context, and so g, may outlive one)
PREFERRED_CHANNELS = {"email": "Email", "phone": "Phone", "letter": "Letter"}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def find_account(email: str) -> Optional[ResidentAccount]:
    """Return the account for an email address, if there is one."""
    try:
        value = normalise_email(email)
    except ValidationFailed:
        return None
    return db.session.scalar(select(ResidentAccount).where(ResidentAccount.email == value))


def validate_new_password(password: str) -> None:
    """Refuse a password that is too short or too long."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationFailed("Password too short",
                               {"password": [f"Password must be {MIN_PASSWORD_LENGTH} characters or more"]})
    if len(password) > 200:
        raise ValidationFailed("Password too long", {"password": ["Password must be 200 characters or fewer"]})


def sign_up(name: str, email: str, password: Optional[str]) -> tuple[ResidentAccount, bool]:
    """Make an account not yet tied to anyone; returns (account, created). An existing one is returned as is."""
    value = normalise_email(email)
    existing = db.session.scalar(select(ResidentAccount).where(ResidentAccount.email == value))
    if existing is not None:
        return existing, False
    if not (name or "").strip():
        raise ValidationFailed("Enter your full name", {"name": ["Enter your full name"]})
    if password:
        validate_new_password(password)
    account = ResidentAccount(email=value, name=name.strip()[:200], session_stamp=secrets.token_hex(16),
                              password_hash=hash_password(password) if password else None)
    db.session.add(account)
    db.session.flush()
    return account, True


def issue_sign_in_link(account: ResidentAccount) -> str:
    """Make a one-time sign-in secret for the account; only its hash is kept."""
    secret = secrets.token_urlsafe(32)
    db.session.add(ResidentSignInToken(account_id=account.id, token_hash=_digest(secret),
                                       expires_at=utcnow() + LINK_LIFETIME))
    db.session.flush()
    return secret


def peek_sign_in_link(secret: str) -> Optional[ResidentSignInToken]:
    """Return the live token for a secret without using it up, or None."""
    if not secret or len(secret) > 100:
        return None
    token = db.session.scalar(select(ResidentSignInToken).where(ResidentSignInToken.token_hash == _digest(secret)))
    if token is None or token.used_at is not None or token.expires_at < utcnow():
        return None
    return token


def redeem_sign_in_link(secret: str) -> ResidentAccount:
    """Use up a sign-in link: the email is now proved, so tie the account to its customer."""
    token = peek_sign_in_link(secret)
    if token is None:
        raise NotFound("This sign-in link has expired or has already been used", code="link_expired")
    token.used_at = utcnow()
    account = token.account
    tie_to_customer(account)
    return account


def tie_to_customer(account: ResidentAccount) -> None:
    """Give a proved account its portal identity on the customer holding its email (made if new).

    Only the proved email ties the account: claimed identities are never attached to another
    person's record (crm.customers.identity), so the holder of the email is this resident.
    """
    if account.email_verified_at is None:
        account.email_verified_at = utcnow()
    if account.identity_id is not None:
        return
    customer = resolve_customer(account.name, account.email, source="portal", verified=True)
    account.identity = add_identity(customer, "portal", account.email, verified=True, source="portal")
    db.session.flush()
    audit(None, "resident.linked", "customer", customer.id, account_id=account.id)


def authenticate(email: str, password: str) -> Optional[ResidentAccount]:
    """Return the account if the password is right and it is not locked; count failures."""
    account = find_account(email)
    if account is None or not account.password_hash:
        hash_password(password or "x")  # same work either way: no account discovery by timing
        return None
    now = utcnow()
    if account.locked_until and account.locked_until > now:
        return None
    if not check_password(account, password or ""):
        account.failed_sign_ins += 1
        if account.failed_sign_ins >= current_app.config.get("PORTAL_SIGN_IN_ATTEMPTS", ATTEMPTS_BEFORE_LOCK):
            account.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            account.failed_sign_ins = 0
        return None
    account.failed_sign_ins = 0
    account.locked_until = None
    return account


def set_password(account: ResidentAccount, password: str) -> None:
    """Set a new password and end every other session of the account."""
    validate_new_password(password)
    account.password_hash = hash_password(password)
    account.session_stamp = secrets.token_hex(16)


# --- the resident's session -------------------------------------------------------------

def sign_in(account: ResidentAccount) -> None:
    """Start a resident session for the account in this browser."""
    account.last_sign_in_at = utcnow()
    session[SESSION_KEY] = {"id": account.id, "stamp": account.session_stamp}
    session.permanent = True
    request.environ[_CACHE_KEY] = account


def sign_out() -> None:
    """End the resident session in this browser (a staff session, if any, stays)."""
    session.pop(SESSION_KEY, None)
    request.environ[_CACHE_KEY] = None


def current_resident() -> Optional[ResidentAccount]:
    """Return the signed-in resident's account, or None (also when the session is stale)."""
    if _CACHE_KEY in request.environ:
        return request.environ[_CACHE_KEY]
    held = session.get(SESSION_KEY)
    account = None
    if isinstance(held, dict) and isinstance(held.get("id"), int):
        account = db.session.get(ResidentAccount, held["id"])
        if account is None or not secrets.compare_digest(str(held.get("stamp", "")), account.session_stamp):
            account = None
            session.pop(SESSION_KEY, None)
    request.environ[_CACHE_KEY] = account
    return account


# --- what a resident may see ------------------------------------------------------------

def account_customer(account: Optional[ResidentAccount]):
    """Return the customer an account is tied to (following merges), or None before proof."""
    if account is None or account.identity_id is None:
        return None
    identity = db.session.get(CustomerIdentity, account.identity_id)
    return live_customer(identity.customer) if identity else None


def account_cases(account) -> list[Case]:
    """Return the cases of the account's customer, newest first: nobody else's."""
    customer = account_customer(account)
    if customer is None:
        return []
    return db.session.scalars(select(Case).where(Case.customer_id == customer.id)
                              .order_by(Case.created_at.desc(), Case.id.desc())).all()


def account_case(account, reference: str) -> Case:
    """Return one of the account's own cases by reference, or NotFound (also for another's case)."""
    customer = account_customer(account)
    case = db.session.scalar(select(Case).where(Case.reference == re.sub(r"[^A-Z0-9-]", "", (reference or "").upper())[:20]))
    if customer is None or case is None or case.customer_id != customer.id:
        raise NotFound("We could not find that case in your account")
    return case


def contact_summary(customer, recent: int = 10) -> dict:
    """Return a resident's contacts counted by channel and the latest few (no staff notes)."""
    if customer is None:
        return {"by_channel": {}, "recent": []}
    counts = dict(db.session.execute(
        select(Contact.channel, func.count(Contact.id)).where(Contact.customer_id == customer.id)
        .group_by(Contact.channel)).all())
    latest = db.session.scalars(select(Contact).where(Contact.customer_id == customer.id)
                                .order_by(Contact.occurred_at.desc(), Contact.id.desc()).limit(recent)).all()
    return {"by_channel": counts, "recent": latest}


def public_events(case: Case) -> list[CaseEvent]:
    """Return what a resident may see of a case's history: raised, status changes, public updates."""
    return [e for e in case.events if e.public or e.kind in ("created", "status_changed", "reopened", "merged")]


def export_data(account: ResidentAccount) -> dict:
    """Return everything the account holds about the resident, as JSON-ready data."""
    customer = account_customer(account)
    data = {
        "account": {"email": account.email, "name": account.name, "created_at": account.created_at.isoformat(),
                    "email_verified_at": account.email_verified_at.isoformat() if account.email_verified_at else None,
                    "email_updates": account.email_updates},
        "customer": None, "contacts": [], "cases": [],
    }
    if customer is None:
        return data
    data["customer"] = {
        "name": customer.name, "preferred_channel": customer.preferred_channel,
        "identities": [{"kind": i.kind, "value": i.value} for i in customer.identities],
        "addresses": [a.one_line() for a in customer.addresses],
    }
    contacts = db.session.scalars(select(Contact).where(Contact.customer_id == customer.id)
                                  .order_by(Contact.occurred_at)).all()
    data["contacts"] = [{"occurred_at": c.occurred_at.isoformat(), "channel": c.channel, "direction": c.direction,
                         "summary": c.summary, "category": c.category, "outcome": c.outcome,
                         "case_reference": c.case.reference if c.case else None} for c in contacts]
    for case in account_cases(account):
        photos = db.session.scalars(select(Attachment).where(Attachment.case_id == case.id)).all()
        data["cases"].append({
            "reference": case.reference, "title": case.title, "description": case.description,
            "service": case.service.name, "category": case.category, "status": case.status,
            "status_label": STATUS_LABELS.get(case.status, case.status), "location": case.location_address,
            "created_at": case.created_at.isoformat(),
            "resolved_at": case.resolved_at.isoformat() if case.resolved_at else None,
            "events": [{"at": e.occurred_at.isoformat(), "kind": e.kind, "to": e.to_value,
                        "body": e.body if e.public else None} for e in public_events(case)],
            "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size,
                             "sha256": a.sha256} for a in photos],
        })
    return data


def wants_email_updates(customer) -> bool:
    """Say whether a customer may be emailed news of their cases (no account: yes; else their choice)."""
    account = db.session.scalar(select(ResidentAccount).join(
        CustomerIdentity, ResidentAccount.identity_id == CustomerIdentity.id).where(
        CustomerIdentity.customer_id == customer.id))
    return account is None or account.email_updates


def account_of(customer) -> Optional[ResidentAccount]:
    """Return the resident account tied to a customer, if they have one."""
    return db.session.scalar(select(ResidentAccount).join(
        CustomerIdentity, ResidentAccount.identity_id == CustomerIdentity.id).where(
        CustomerIdentity.customer_id == customer.id).limit(1))


def update_preferences(account: ResidentAccount, email_updates: bool, preferred_channel: Optional[str]) -> None:
    """Save how the resident wants to hear from the council."""
    if preferred_channel and preferred_channel not in PREFERRED_CHANNELS:
        raise ValidationFailed("Choose how we should contact you",
                               {"preferred_channel": ["Select email, phone or letter"]})
    account.email_updates = bool(email_updates)
    customer = account_customer(account)
    if customer is not None:
        customer.preferred_channel = preferred_channel or None
