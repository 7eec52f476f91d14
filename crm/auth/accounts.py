"""Staff accounts: passwords, lock-out after failed sign-ins, and API tokens."""
import hashlib
import secrets
from datetime import timedelta
from typing import Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from sqlalchemy import select

from ..audit import audit
from ..customers.identity import normalise_email
from ..errors import Conflict, NotFound, ValidationFailed
from ..extensions import db
from ..models import ROLES, ApiToken, User, utcnow

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "crm_"


def hash_password(password: str) -> str:
    """Return an Argon2id hash of the password."""
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    """Say whether the password is the user's, rehashing if parameters have moved on."""
    if not user.password_hash:
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


def _fits(column, value: Optional[str], field: str) -> None:
    """Refuse text longer than its column holds: PostgreSQL would refuse it at the flush, SQLite would keep it."""
    limit = column.type.length
    if value is not None and len(value) > limit:
        raise ValidationFailed(f"The {field} is too long", {field: [f"at most {limit} characters"]})


def validate_password(password: str) -> None:
    """Refuse passwords too short to resist guessing."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ValidationFailed("Password too short",
                               {"password": [f"must be at least {MIN_PASSWORD_LENGTH} characters"]})


def create_user(email: str, name: str, role: str, password: Optional[str] = None, actor=None,
                service_id=None) -> User:
    """Make a staff user; with no password they cannot sign in until one is set."""
    email = normalise_email(email)
    if role not in ROLES:
        raise ValidationFailed("Unknown role", {"role": [f"must be one of {', '.join(ROLES)}"]})
    if not (name or "").strip():
        raise ValidationFailed("A name is required", {"name": ["required"]})
    _fits(User.__table__.c.name, name.strip(), "name")
    if db.session.scalar(select(User).where(User.email == email)):
        raise Conflict(f"A user with email {email} already exists", {"email": ["already in use"]})
    user = User(email=email, name=name.strip(), role=role, service_id=service_id)
    if password is not None:
        validate_password(password)
        user.password_hash = hash_password(password)
    db.session.add(user)
    db.session.flush()
    audit(actor, "user.create", "user", user.id, email=email, role=role)
    return user


def update_user(user: User, *, name: str, role: str, service_id, chat_capacity: int, active: bool,
                new_password: Optional[str] = None, actor=None) -> User:
    """Change a staff user's details (and password when given), audited with what changed."""
    if role not in ROLES:
        raise ValidationFailed("Unknown role", {"role": [f"must be one of {', '.join(ROLES)}"]})
    _fits(User.__table__.c.name, name, "name")
    if new_password:
        validate_password(new_password)
    wanted = {"name": name, "role": role, "chat_capacity": chat_capacity, "active": active}
    changes = {k: v for k, v in wanted.items() if getattr(user, k) != v}
    if new_password:
        user.password_hash = hash_password(new_password)
        user.failed_logins, user.locked_until = 0, None
    for key, value in wanted.items():
        setattr(user, key, value)
    user.service_id = service_id or None
    audit(actor, "user.update", "user", user.id, password_changed=bool(new_password),
          **{k: str(v) for k, v in changes.items()})
    return user


def find_user(email: str) -> User:
    """Return the user with this email or raise NotFound."""
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise NotFound(f"No user {email}")
    return user


def authenticate(email: str, password: str) -> Optional[User]:
    """Return the user if the credentials are right and the account is open; count failures."""
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        _hasher.hash(password or "x")  # same work either way: no user enumeration by timing
        return None
    now = utcnow()
    if user.locked_until and user.locked_until > now:
        return None
    if not user.active or not check_password(user, password or ""):
        user.failed_logins += 1
        if user.failed_logins >= current_app.config["LOGIN_ATTEMPTS_BEFORE_LOCK"]:
            user.locked_until = now + timedelta(minutes=current_app.config["LOGIN_LOCK_MINUTES"])
            user.failed_logins = 0
            audit(None, "user.locked", "user", user.id)
        return None
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return user


def create_token(user: User, label: Optional[str] = None, actor=None) -> str:
    """Issue an API token for the user; returns the secret, which is stored only hashed."""
    _fits(ApiToken.__table__.c.label, label, "label")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=_digest(secret), prefix=secret[:12], label=label))
    audit(actor or user, "token.create", "user", user.id, label=label)
    return secret


def revoke_token(token: ApiToken, actor=None) -> None:
    """Revoke a token at once."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit(actor, "token.revoke", "user", token.user_id, prefix=token.prefix)


def user_for_token(secret: str) -> Optional[User]:
    """Return the active user a live token belongs to, noting its use."""
    token = live_token(secret)
    return token.user if token else None


def live_token(secret: str) -> Optional[ApiToken]:
    """Return the unrevoked token of an active user with this secret, noting its use."""
    if not secret or not isinstance(secret, str) or len(secret) > 200:
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    token.last_used_at = utcnow()
    return token


def _digest(secret: str) -> str:
    # Tokens are long random strings, so a fast hash is safe here (no dictionary to guess from).
    return hashlib.sha256(secret.encode()).hexdigest()
