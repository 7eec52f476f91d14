"""Turn every error into the right answer: the contract's JSON shape under /api, pages elsewhere."""
import logging

from flask import jsonify, render_template, request
from sqlalchemy.exc import DataError, IntegrityError
from werkzeug.exceptions import HTTPException

from .errors import DomainError
from .extensions import db

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def wants_json() -> bool:
    """Say whether this request should be answered in JSON."""
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json"
    )


RESIDENT_ENDPOINTS = ("webchat.chat", "webchat.widget")
# Raw HTML for when even the error page cannot be rendered (say the database is away).
BARE_PAGE = ("<!doctype html><html lang=\"en-GB\"><head><meta charset=\"utf-8\"><title>Sorry, there is a problem"
             "</title></head><body><h1>Sorry, there is a problem</h1><p>{message}</p></body></html>")


def resident_facing() -> bool:
    """Say whether the request came from a resident page (or from someone who is not staff)."""
    endpoint = request.endpoint or ""
    if endpoint.startswith("portal.") or endpoint in RESIDENT_ENDPOINTS:
        return True
    if endpoint:
        return False
    try:
        from flask_login import current_user

        return not current_user.is_authenticated
    except Exception:  # noqa: BLE001 - an error page must not fail on who is asking
        return True


def error_page(status: int, message: str):
    """Render the friendly page for a status: the GOV.UK one for residents, the console's for staff."""
    template = "portal/error.html" if resident_facing() else "errors/error.html"
    try:
        return render_template(template, status=status, message=message), status
    except Exception:  # noqa: BLE001 - the last resort still says something useful, never a traceback
        log.exception("could not render the error page")
        from markupsafe import escape

        return BARE_PAGE.format(message=escape(message)), status, {"Content-Type": "text/html; charset=utf-8"}


def _rollback_quietly():
    """Roll back what the request left; a lost connection must not turn the error into another."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001
        log.warning("rollback after an error failed", exc_info=True)


def error_response(status: int, message: str, code=None, fields=None):
    """Build the contract's error body with a status."""
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message, "fields": fields or {}}}
    return jsonify(body), status


def _fields_from_webargs(error: HTTPException) -> dict:
    """Flatten webargs' {location: {field: [...]}} messages to {field: [...]}."""
    messages = (getattr(error, "data", None) or {}).get("messages") or {}
    fields = {}
    for location, found in messages.items():
        if isinstance(found, dict):
            fields.update(_flat_messages(found))
        else:
            fields[location] = found
    return fields


def _flat_messages(messages: dict, prefix: str = "") -> dict:
    """Name a nested field's messages by its path ("address.postcode", "articles.0"), as the error body documents."""
    flat = {}
    for name, found in messages.items():
        path = f"{prefix}{name}"
        if isinstance(found, dict):
            flat.update(_flat_messages(found, f"{path}."))
        else:
            flat[path] = [str(m) for m in found] if isinstance(found, list) else [str(found)]
    return flat


def init_app(app):
    """Register the error handlers on the app."""

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        _rollback_quietly()
        if wants_json():
            return error_response(error.status, error.message, error.code, error.fields)
        return error_page(error.status, error.message)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        if wants_json():
            fields = _fields_from_webargs(error)
            message = error.description if status != 422 else "The request has invalid fields"
            if status == 400 and fields.get("json"):
                message = "The body is not valid JSON"
            response, status = error_response(status, message, fields=fields)
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="crm"'
            return response, status
        return error_page(status, error.description)

    @app.errorhandler(IntegrityError)
    @app.errorhandler(DataError)
    def database_refusal(error):
        # A constraint the validation did not foresee: the input was wrong, not the server.
        _rollback_quietly()
        log.warning("database refused a write: %s", error.orig)
        if wants_json():
            return error_response(409, "The change conflicts with stored data", "conflict")
        return error_page(409, "That change conflicts with stored data.")

    @app.errorhandler(Exception)
    def unexpected(error):
        _rollback_quietly()
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_response(500, "Something went wrong on our side", "internal_error")
        return error_page(500, "Something went wrong on our side. Try again in a few minutes.")
