"""Resident pages: public web forms, /track and /account (no staff login), plus the staff sides
of forms: filling one for a caller (assisted digital) and editing form definitions."""
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request
from jinja2 import ChoiceLoader, PackageLoader, PrefixLoader
from werkzeug.exceptions import HTTPException

from ..errors import DomainError
from ..extensions import db

bp = Blueprint("portal", __name__)
staff_bp = Blueprint("form_staff", __name__)
COUNCIL_TZ = ZoneInfo("Europe/London")
PRIVATE_ENDPOINTS = ("portal.account", "portal.account_case_view", "portal.preferences", "portal.download_data",
                     "portal.track_case", "portal.reopen", "portal.form_confirmation", "portal.sign_in_link")


def council_time(value, pattern="%-d %B %Y, %H:%M"):
    """Format a stored (UTC) time as the council's local (UK) time."""
    return value.astimezone(COUNCIL_TZ).strftime(pattern) if value else ""


@bp.after_request
def keep_private_pages_out_of_caches(response):
    """A resident's own pages must not be kept by shared caches or the browser's back-forward store."""
    if request.endpoint in PRIVATE_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response

RESIDENT_MESSAGES = {
    400: "Something in that request was not right. Go back and try again.",
    404: "If you typed the web address, check it is correct.",
    405: "That page cannot be used like that.",
    413: "The file you sent is too big. Photos must be smaller than 10MB.",
    429: "You have tried too many times. Wait a few minutes and try again.",
}


@bp.errorhandler(HTTPException)
def resident_http_error(error: HTTPException):
    """Answer errors on resident pages with a resident page, not the staff console's."""
    status = error.code or 500
    message = RESIDENT_MESSAGES.get(status, error.description)
    if getattr(error, "name", "") == "Bad Request" and "CSRF" in (error.description or ""):
        message = "Your session ended because the page was open a long time. Go back, reload the page and try again."
    return render_template("portal/error.html", status=status, message=message), status


@bp.errorhandler(DomainError)
def resident_domain_error(error: DomainError):
    """Answer a refused request on a resident page in plain words."""
    db.session.rollback()
    return render_template("portal/error.html", status=error.status, message=error.message), error.status


def register(app, api):
    """Register the resident and staff form pages; teach Jinja the GOV.UK Frontend macros."""
    # govuk-frontend-jinja 3.10.0 is the port of govuk-frontend 5.14.0, the version npm installs.
    app.jinja_loader = ChoiceLoader([
        app.jinja_loader,
        PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
    ])
    from . import account_views, admin, assisted, drafts, forms_views, settings, track  # noqa: F401  (routes, jobs)

    settings.init_app(app)
    from .accounts import current_resident

    app.jinja_env.globals["current_resident"] = current_resident
    app.context_processor(lambda: {"council_name": app.config.get("COUNCIL_NAME") or "Council"})
    app.jinja_env.filters["council_time"] = council_time
    app.register_blueprint(bp)
    app.register_blueprint(staff_bp)

    from ..auth.roles import ADMINS
    from ..navigation import add_nav_item

    add_nav_item("Forms", "form_staff.form_definitions", *ADMINS)
