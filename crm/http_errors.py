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
            fields.update(found)
        else:
            fields[location] = found
    return fields


def init_app(app):
    """Register the error handlers on the app."""

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        db.session.rollback()
        if wants_json():
            return error_response(error.status, error.message, error.code, error.fields)
        return render_template("errors/error.html", status=error.status, message=error.message), error.status

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
        return render_template("errors/error.html", status=status, message=error.description), status

    @app.errorhandler(IntegrityError)
    @app.errorhandler(DataError)
    def database_refusal(error):
        # A constraint the validation did not foresee: the input was wrong, not the server.
        db.session.rollback()
        log.warning("database refused a write: %s", error.orig)
        if wants_json():
            return error_response(409, "The change conflicts with stored data", "conflict")
        return render_template("errors/error.html", status=409,
                               message="That change conflicts with stored data."), 409

    @app.errorhandler(Exception)
    def unexpected(error):
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_response(500, "Something went wrong on our side", "internal_error")
        return render_template("errors/error.html", status=500,
                               message="Something went wrong on our side."), 500
