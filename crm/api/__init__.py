"""The JSON API under /api/v1: one smorest blueprint per area, documented in OpenAPI."""
from flask import request
from flask_login import current_user
from flask_smorest import Blueprint

from ..auth.access import bearer_request
from ..extensions import csrf

API_PREFIX = "/api/v1"


def api_blueprint(name: str, import_name: str, description: str, url_prefix: str = "") -> Blueprint:
    """Make a smorest blueprint under /api/v1 that needs staff auth and CSRF for cookie sessions."""
    blp = Blueprint(name, import_name, url_prefix=API_PREFIX + url_prefix, description=description)
    csrf.exempt(blp)

    @blp.before_request
    def authenticate():
        if not current_user.is_authenticated:
            from ..auth.access import unauthorized

            return unauthorized()
        # Cookie sessions must prove the request came from our pages; bearer tokens cannot be
        # sent by another site's page, so they need no CSRF token.
        if request.method not in ("GET", "HEAD", "OPTIONS") and not bearer_request():
            csrf.protect()

    return blp


def register(app, api):
    """Register the customer and contact endpoints; other areas register their own."""
    from . import customers, contacts, duplicates

    for module in (customers, contacts, duplicates):
        api.register_blueprint(module.blp)
