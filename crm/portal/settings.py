"""Resident pages' settings: defaults, overridable by app config or the environment (PORTAL_*)."""
from config import fill_from_environment

from ..channels.uploads import DEFAULT_MAX_PHOTO_BYTES
from .accounts import ATTEMPTS_BEFORE_LOCK

DEFAULTS = {
    "PORTAL_MAX_PHOTO_BYTES": DEFAULT_MAX_PHOTO_BYTES,
    # Failed passwords in a row before an account is locked for a while.
    "PORTAL_SIGN_IN_ATTEMPTS": ATTEMPTS_BEFORE_LOCK,
    # Per client address (Flask-Limiter syntax): sign-in attempts, sign-in link emails, /track lookups.
    "PORTAL_SIGN_IN_LIMIT": "10 per minute;50 per hour",
    "PORTAL_LINK_LIMIT": "5 per minute;20 per hour",
    "PORTAL_TRACK_LIMIT": "10 per minute;60 per hour",
    # Failed lookups of one reference, from anywhere.
    "PORTAL_TRACK_REFERENCE_LIMIT": "5 per hour",
}


def init_app(app) -> None:
    """Fill in the resident pages' settings the app config lacks, from PORTAL_* variables or defaults."""
    fill_from_environment(app.config, DEFAULTS)
