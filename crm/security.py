"""What every request and response goes through: the Content-Security-Policy, links built from
configuration, and API input that cannot hurt (nesting depth, numbers in range, ids in URLs)."""
import json
import logging
import math
import re
import unicodedata
from urllib.parse import quote

from flask import current_app, has_request_context, request, url_for
from werkzeug.routing import IntegerConverter

MAX_JSON_DEPTH = 32
INT_LIMIT = 2**63 - 1  # what a BIGINT column (and SQLite's INTEGER) holds
ID_LIMIT = 2**31 - 1  # primary keys are INTEGER columns
log = logging.getLogger(__name__)
_INTEGER = re.compile(r"\s*[-+]?\d+\s*")

# No inline script anywhere: page data travels in <script type="application/json"> blocks, read by our files.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; media-src 'self' data: blob:; object-src 'none'; "
       "base-uri 'self'; form-action 'self'")


def public_url(endpoint: str, **values) -> str:
    """Return an absolute link on the CRM's configured address (CRM_BASE_URL), never the request's Host header."""
    return current_app.config["CRM_BASE_URL"].rstrip("/") + url_for(endpoint, **values)


def add_content_security_policy(response):
    """Give every HTML page the policy; a view's own frame-ancestors (embeddable chat) or full policy stays."""
    if response.mimetype != "text/html":
        return response
    own = response.headers.get("Content-Security-Policy")
    if own is None:
        response.headers["Content-Security-Policy"] = f"{CSP}; frame-ancestors 'self'"
    elif own.startswith("frame-ancestors"):
        response.headers["Content-Security-Policy"] = f"{CSP}; {own}"
    return response


def clean_filename(name, default: str = "attachment", limit: int = 200) -> str:
    """Return a stored file name that is safe everywhere: no path, no control or bidi characters, no quotes."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in name)
    name = " ".join(name.replace('"', "'").split()).lstrip(". ")
    if len(name) > limit:
        stem, dot, extension = name.rpartition(".")
        extension = extension[:16] if dot and stem else ""
        name = name[:limit - len(extension) - 1].rstrip() + ("." + extension if extension else "")
    return name or default


def content_disposition(kind: str, filename: str) -> str:
    """Return a Content-Disposition header value for any file name (RFC 6266: ASCII fallback plus UTF-8)."""
    name = clean_filename(filename)
    fallback = name.encode("ascii", "replace").decode().replace("?", "_")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


_fallback_limiter = None


def _mail_limiter():
    """Return the app's rate-limit strategy (Redis when configured), or a per-process one when it fails."""
    global _fallback_limiter
    from limits import storage, strategies

    from .extensions import limiter

    try:
        strategy = limiter.limiter
        strategy.storage.check()
        return strategy
    except Exception:  # noqa: BLE001 - Redis away: count in this process rather than send unlimited mail
        if _fallback_limiter is None:
            _fallback_limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        return _fallback_limiter


def resident_mail_allowed(recipient: str, kind: str = "mail") -> bool:
    """Count one mail a resident's action would send; False when the recipient or the requester has had enough.

    Limits (RESIDENT_MAIL_PER_RECIPIENT, RESIDENT_MAIL_PER_REQUESTER) hold across every kind of
    resident-triggered mail, so the council's mail cannot be turned into a relay at anyone.
    """
    from limits import parse_many

    recipient = (recipient or "").strip().lower()
    requester = (request.remote_addr or "unknown") if has_request_context() else "no-request"
    checks = [(item, ("resident-mail-to", recipient))
              for item in parse_many(current_app.config["RESIDENT_MAIL_PER_RECIPIENT"])]
    checks += [(item, ("resident-mail-from", requester))
               for item in parse_many(current_app.config["RESIDENT_MAIL_PER_REQUESTER"])]
    strategy = _mail_limiter()
    try:
        if not all(strategy.test(item, *key) for item, key in checks):
            log.warning("resident %s to %s from %s refused: over the mail limit", kind, recipient, requester)
            return False
        for item, key in checks:
            strategy.hit(item, *key)
    except Exception:  # noqa: BLE001 - the storage failed mid-way: refuse rather than relay unlimited mail
        log.warning("resident mail limit could not be checked", exc_info=True)
        return False
    return True


class BoundedIntegerConverter(IntegerConverter):
    """<int:...> in a URL: an id too big for any column is simply not found (never a database error)."""

    def __init__(self, map, fixed_digits=0, min=None, max=ID_LIMIT, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _reject_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def json_problem(raw: bytes):
    """Return why a JSON body cannot be accepted (too deep, a number out of range), or None."""
    try:
        document = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        return "The JSON is nested too deeply"
    except ValueError as error:  # malformed, or an integer of thousands of digits
        return "The body is not valid JSON" if isinstance(error, json.JSONDecodeError) else str(error)
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                return f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep"
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int) and abs(value) > INT_LIMIT:
            return "A number in the JSON is out of range"
        elif isinstance(value, float) and not math.isfinite(value):
            return "A number in the JSON is out of range"
    return None


def check_api_input():
    """Answer 400 before any view runs when an API query or JSON body could only fail deeper down."""
    if not request.path.startswith("/api/"):
        return None
    from .http_errors import error_response

    for name, value in request.args.items(multi=True):
        if _INTEGER.fullmatch(value) and abs(int(value)) > INT_LIMIT:
            return error_response(400, f"{name} is out of range", fields={name: ["out of range"]})
    if request.is_json and request.content_length != 0:
        problem = json_problem(request.get_data(cache=True))
        if problem:
            return error_response(400, problem, fields={"json": [problem]})
    return None


# Settings in Flask-Limiter's syntax ("10 per minute;100 per hour"), from config.py and the areas' defaults.
RATE_LIMIT_SETTINGS = ("PORTAL_SUBMIT_LIMIT", "PORTAL_STEP_LIMIT", "PORTAL_SIGN_IN_LIMIT", "PORTAL_LINK_LIMIT",
                       "PORTAL_TRACK_LIMIT", "PORTAL_TRACK_REFERENCE_LIMIT", "OPEN311_POST_LIMIT",
                       "RESIDENT_MAIL_PER_RECIPIENT", "RESIDENT_MAIL_PER_REQUESTER")


def check_rate_limit_settings(config) -> None:
    """Refuse to start on a rate limit that does not parse, naming it, rather than fail the first limited request."""
    from limits import parse_many

    from config import SettingError

    for name in RATE_LIMIT_SETTINGS:
        value = config.get(name)
        try:
            if value is not None and not parse_many(value):
                raise ValueError
        except ValueError:
            raise SettingError(f"{name}={value!r}: expected rate limits such as '10 per minute;100 per hour'") from None


def init_app(app):
    """Install the URL converter, the API input guard and the response headers (before blueprints register)."""
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.before_request(check_api_input)
    app.after_request(add_content_security_policy)
