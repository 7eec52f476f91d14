"""What every webchat Socket.IO handler goes through: refusals as error acks, payload and rate checks.

Any refusal comes back as an ack `{"error": {"code", "message", "fields"}}`; an unexpected
failure is logged and acked as `server_error`, so no handler ever dies on bad input.
"""
import logging
from functools import wraps
from typing import Optional

from flask import current_app, request

from ..errors import DomainError, ValidationFailed
from ..extensions import db
from .limits import BucketsByKey, TokenBucket

log = logging.getLogger("crm.webchat")

_ip_buckets: Optional[BucketsByKey] = None


def error_ack(code: str, message: str, fields=None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def safe_handler(fn):
    """Turn refusals into error acks and unexpected failures into a logged server_error ack."""
    @wraps(fn)
    def wrapped(*args):
        try:
            return fn(*args)
        except DomainError as exc:
            db.session.rollback()
            return error_ack(exc.code, exc.message, exc.fields)
        except Exception:  # noqa: BLE001 - one bad event must not kill the connection
            db.session.rollback()
            log.exception("webchat handler %s failed", fn.__name__)
            return error_ack("server_error", "Something went wrong; please try again")
    return wrapped


def payload_object(data) -> dict:
    """Return the event payload as a dict or refuse."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationFailed("The payload must be an object", {"payload": ["must be a JSON object"]})
    return data


def client_ip() -> str:
    return (request.remote_addr or "unknown")[:45]


def ip_allows() -> bool:
    """Spend one token from the client address's bucket."""
    global _ip_buckets
    if _ip_buckets is None:
        _ip_buckets = BucketsByKey(current_app.config["WEBCHAT_IP_RATE"], current_app.config["WEBCHAT_IP_BURST"])
    return _ip_buckets.take(client_ip())


def check_rate(bucket: TokenBucket) -> None:
    """Refuse when the connection or its address sends faster than allowed."""
    if not bucket.take() or not ip_allows():
        raise DomainError("You are sending messages too quickly; please wait a moment",
                          code="rate_limited", status=429)


def new_bucket() -> TokenBucket:
    return TokenBucket(current_app.config["WEBCHAT_CONNECTION_RATE"], current_app.config["WEBCHAT_CONNECTION_BURST"])
