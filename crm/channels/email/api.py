"""API of the email channel: POST /inbound/email (the conversation endpoints are crm/conversations/api.py).

POST /inbound/email is for MTAs and mail services, not people: it takes
`Authorization: Bearer TOKEN` where TOKEN is either the dedicated ingest token
(CRM_INBOUND_EMAIL_TOKEN, so a mail pipe needs no staff account) or any staff API token
(`crm create-token`). No cookie sessions: a browser never posts raw mail.
"""
import hmac

from flask import current_app, request
from flask_login import current_user
from flask_smorest import Blueprint

from ...api import API_PREFIX
from ...errors import DomainError, ValidationFailed
from ...extensions import csrf
from .ingest import receive
from .schemas import InboundResultOut

inbound_blp = Blueprint("inbound_email", __name__, url_prefix=API_PREFIX + "/inbound",
                        description="Raw inbound email from an MTA or mail service")
csrf.exempt(inbound_blp)


def _ingest_token_ok() -> bool:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        return False
    secret = header[7:].strip()
    expected = current_app.config.get("CRM_INBOUND_EMAIL_TOKEN")
    if expected and hmac.compare_digest(secret.encode(), expected.encode()):
        return True
    return current_user.is_authenticated  # a staff token, loaded by the bearer request loader


@inbound_blp.post("/email")
@inbound_blp.response(200, InboundResultOut)
@inbound_blp.doc(
    summary="Ingest one raw RFC 5322 message",
    description="Body: the raw message, `Content-Type: message/rfc822`. Auth: `Authorization: Bearer` "
                "with the ingest token (CRM_INBOUND_EMAIL_TOKEN) or any staff API token. The same "
                "message twice is stored once and answered `duplicate`.",
    requestBody={"required": True, "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}}},
    security=[{"bearer": []}],
)
def inbound_email():
    """Ingest a raw message posted by an MTA pipe or a mail service."""
    if not _ingest_token_ok():
        raise DomainError("Send Authorization: Bearer with the ingest token or a staff API token",
                          status=401, code="unauthorized")
    if request.mimetype != "message/rfc822":
        raise DomainError("Post the raw message with Content-Type: message/rfc822",
                          {"content_type": [f"got {request.mimetype or 'none'}"]},
                          status=415, code="unsupported_media_type")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ValidationFailed("The body is empty: post the raw message", {"message": ["empty"]})
    result = receive(raw, source="http")
    return result.as_dict()
