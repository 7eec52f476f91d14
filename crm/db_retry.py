"""A lost database connection costs at most one failed request per pooled connection, and no safe one.

SQLAlchemy invalidates the whole pool on the first disconnect it sees (every connection is
replaced before its next use), so only requests already holding a dead connection fail. A GET,
HEAD or OPTIONS that failed that way is run once more, on a fresh connection, before anything
is sent; any other request is answered 503 "try again": it may not be safe to repeat.
"""
import logging

from flask import make_response, request
from sqlalchemy.exc import OperationalError

from .extensions import db

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_FLAG = "crm.retry_on_fresh_connection"


def init_app(app) -> None:
    """Answer database operational errors (503, or a silent retry for safe requests) and wrap the WSGI app."""
    from .http_errors import error_page, error_response, wants_json

    @app.errorhandler(OperationalError)
    def database_unavailable(error: OperationalError):
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection is gone; the session is discarded anyway
            pass
        if (error.connection_invalidated and request.method in SAFE_METHODS
                and not request.environ.get(RETRY_FLAG + ".done")):
            log.warning("database connection lost during %s %s; retrying on a fresh one", request.method, request.path)
            request.environ[RETRY_FLAG] = True
        else:
            log.error("database unavailable during %s %s: %s", request.method, request.path, error.orig)
        if wants_json():
            response = make_response(error_response(503, "The database is unavailable for a moment; try again",
                                                    "database_unavailable"))
        else:
            response = make_response(error_page(503, "We could not reach our records just now. Please try again."))
        response.headers["Retry-After"] = "1"
        return response

    app.wsgi_app = RetrySafeRequests(app.wsgi_app)


class RetrySafeRequests:
    """WSGI middleware: run a safe request once more when its database connection had died."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in SAFE_METHODS:
            return self.wsgi_app(environ, start_response)
        held = []

        def hold(status, headers, exc_info=None):
            held.append((status, headers, exc_info))
            return lambda data: None  # Flask never uses write()

        body = self.wsgi_app(environ, hold)
        if environ.pop(RETRY_FLAG, False):
            if hasattr(body, "close"):
                body.close()
            environ[RETRY_FLAG + ".done"] = True
            return self.wsgi_app(environ, start_response)
        start_response(*held[0])
        return body
