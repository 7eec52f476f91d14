"""Open311 GeoReport v2 endpoints at /open311/v2/, in XML and JSON, errors as the spec shapes them.

Quirks of real clients handled here: FixMyStreet (XML, `api_key` in the POST body, multipart
with uploaded media, `attribute[...]` fields, polling tokens/), older clients (`api_key` in the
query string, the singular `service/` path, an empty `jurisdiction_id`).
"""
import logging
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from ..auth.accounts import user_for_token
from ..errors import DomainError
from ..extensions import csrf, db, limiter
from . import service as o311
from .service import Open311Error

log = logging.getLogger(__name__)
# Settings, overridable by app config or the environment; empty means the fallback beside each use.
DEFAULTS = {
    "OPEN311_JURISDICTION": "",  # jurisdiction_id apps may send (else CRM_MAIL_DOMAIN)
    "OPEN311_CONTACT": "",  # discovery's contact (else the contact centre at CRM_MAIL_FROM)
    "OPEN311_KEY_SERVICE": "",  # discovery's word on getting an API key
    "OPEN311_POST_LIMIT": "120/minute",  # requests posted per client address
}

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
csrf.exempt(bp)
FORMATS = ("xml", "json")
SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-26T00:00:00Z"


def split_format(name: str) -> tuple[str, str]:
    """Split "requests.xml" into ("requests", "xml"); an unknown format is a 404."""
    stem, dot, fmt = name.rpartition(".")
    if not dot:
        raise Open311Error(404, f"{name}: add .xml or .json")
    if fmt.lower() not in FORMATS:
        raise Open311Error(404, f"format {fmt!r} not supported; use xml or json")
    return stem, fmt.lower()


def _xml_value(element, value):
    if isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def to_xml(root: str, item_tag: str, items: list) -> bytes:
    """Render a list of dicts as <root><item_tag>...</item_tag></root>, lists as repeated children."""
    top = ET.Element(root)
    for item in items:
        top.append(_element(item_tag, item))
    return ET.tostring(top, encoding="utf-8", xml_declaration=True)


def _element(tag: str, value) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(child, list):
                holder = ET.SubElement(element, key)
                singular = {"attributes": "attribute", "values": "value", "endpoints": "endpoint",
                            "formats": "format"}.get(key, key.rstrip("s"))
                for entry in child:
                    holder.append(_element(singular, entry))
            else:
                element.append(_element(key, child))
    else:
        _xml_value(element, value)
    return element


def respond(fmt: str, root: str, item_tag: str, items, status: int = 200, single=None) -> Response:
    """Answer in the asked format: XML <root><item/>…</root>, JSON a list (or one object when single)."""
    if fmt == "json":
        response = jsonify(single if single is not None else items)
        response.status_code = status
        return response
    if single is not None:
        body = ET.tostring(_element(root, single), encoding="utf-8", xml_declaration=True)
    else:
        body = to_xml(root, item_tag, items)
    return Response(body, status=status, content_type="text/xml; charset=utf-8")


def _requested_format() -> str:
    name = (request.view_args or {}).get("name") or request.path.rsplit("/", 1)[-1]
    fmt = name.rpartition(".")[2].lower()
    return fmt if fmt in FORMATS else "xml"


def error_response(status: int, description: str) -> Response:
    """The spec's error list: [{"code", "description"}] or <errors><error>…</error></errors>."""
    return respond(_requested_format(), "errors", "error", [{"code": status, "description": description}], status)


@bp.errorhandler(DomainError)
def domain_error(error):
    db.session.rollback()
    if isinstance(error, Open311Error):
        return error_response(error.status, error.description)
    # A refusal of the cases service (unknown category, bad location) is bad input to the client.
    details = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in error.fields.items())
    return error_response(400 if error.status == 422 else error.status,
                          error.message + (f" ({details})" if details else ""))


@bp.errorhandler(HTTPException)
def http_error(error):
    db.session.rollback()
    return error_response(error.code or 500, error.description or error.name)


@bp.errorhandler(Exception)
def unexpected(error):
    db.session.rollback()
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "Something went wrong on our side")


def check_jurisdiction():
    """Accept no jurisdiction_id, an empty one (older clients), or ours; refuse any other."""
    given = (request.values.get("jurisdiction_id") or "").strip()
    ours = current_app.config.get("OPEN311_JURISDICTION") or current_app.config.get("CRM_MAIL_DOMAIN")
    if given and given.lower() != str(ours).lower():
        raise Open311Error(404, f"jurisdiction_id {given!r} not found")


def client_for_key():
    """Return the staff user whose API token is the api_key (body or query string); 403 otherwise."""
    key = (request.form.get("api_key") or request.args.get("api_key") or "").strip()
    if not key:
        raise Open311Error(403, "api_key was not provided")
    user = user_for_token(key)
    if user is None:
        raise Open311Error(403, "api_key is not valid")
    return user


@bp.get("/discovery.<fmt>")
def discovery(fmt):
    """Say where this endpoint is and what it speaks."""
    _, fmt = split_format(f"discovery.{fmt}")
    endpoint_url = url_for("open311.discovery", fmt=fmt, _external=True).rsplit("/", 1)[0] + "/"
    body = {
        "changeset": CHANGESET,
        "contact": current_app.config.get("OPEN311_CONTACT") or f"Contact centre, {current_app.config['CRM_MAIL_FROM']}",
        "key_service": current_app.config.get("OPEN311_KEY_SERVICE") or "Ask the council for an API key",
        "endpoints": [{"specification": SPEC_URL, "url": endpoint_url, "changeset": CHANGESET, "type": "production",
                       "formats": ["text/xml", "application/json"]}],
    }
    return respond(fmt, "discovery", None, None, single=body)


@bp.get("/<name>")
def services_or_requests(name):
    """services.{fmt}, requests.{fmt} and servicerequestupdates.{fmt} (GET); anything else is a spec 404."""
    stem, fmt = split_format(name)
    if stem in ("services", "service"):
        return _services(fmt)
    if stem == "requests":
        return _list_requests(fmt)
    if stem == "servicerequestupdates":
        return _request_updates(fmt)
    raise Open311Error(404, f"{name} not found")


def _request_updates(fmt):
    """servicerequestupdates.{fmt}: mySociety's extension FixMyStreet polls for progress."""
    check_jurisdiction()
    updates = o311.request_updates(o311.parse_datetime("start_date", request.args.get("start_date")),
                                   o311.parse_datetime("end_date", request.args.get("end_date")))
    return respond(fmt, "service_request_updates", "request_update", updates)


def _services(fmt):
    check_jurisdiction()
    items = []
    for category in o311.open311_services():
        items.append({
            "service_code": category.code,
            "service_name": category.name,
            "description": f"{category.name} ({category.service.name})",
            "metadata": bool(o311.attributes_for(category)),
            "type": "realtime",
            "keywords": category.code.replace("_", " "),
            "group": category.service.name,
        })
    return respond(fmt, "services", "service", items)


@bp.get("/services/<name>")
@bp.get("/service/<name>")
def service_definition(name):
    """A service definition: the attributes a request of this service may carry."""
    code, fmt = split_format(name)
    check_jurisdiction()
    category = o311.find_open311_service(code)
    attributes = [{
        "variable": True,
        "code": a.code,
        "datatype": a.datatype,
        "required": a.required,
        "datatype_description": None,
        "order": a.order,
        "description": a.description,
        **({"values": a.values} if a.values else {}),
    } for a in o311.attributes_for(category)]
    return respond(fmt, "service_definition", None, None, single={"service_code": category.code,
                                                                  "attributes": attributes})


def _attributes_from_form() -> dict:
    """Collect attribute[code] fields (attribute[code][] for lists) from the body."""
    found = {}
    for key in request.form.keys():
        if key.startswith("attribute[") and key.endswith("]"):
            code = key[len("attribute["):-1]
            if code.endswith("]["):  # attribute[code][]
                code = code[:-2]
            values = request.form.getlist(key)
            found[code] = values if len(values) > 1 or key.endswith("[]") else values[0]
    return found


@bp.post("/<name>")
@limiter.limit(lambda: current_app.config.get("OPEN311_POST_LIMIT", DEFAULTS["OPEN311_POST_LIMIT"]))
def post_request(name):
    """POST requests.{fmt}: raise a case; the answer carries its service_request_id and a token."""
    stem, fmt = split_format(name)
    if stem != "requests":
        raise Open311Error(404, f"{name} does not take POST")
    check_jurisdiction()
    client = client_for_key()
    uploads = [f for key in request.files for f in request.files.getlist(key) if f and f.filename is not None]
    stored = o311.create_request(request.form.to_dict(), _attributes_from_form(), uploads, client)
    db.session.commit()
    case = stored.case
    log.info("open311 request %s from %s raised %s", stored.service_code, client.email, case.reference)
    answer = {"service_request_id": case.reference, "token": stored.token, "service_notice": None,
              "account_id": stored.account_id}
    return respond(fmt, "service_requests", "request", [answer])


def _list_requests(fmt):
    check_jurisdiction()
    args = request.args
    cases = o311.list_requests(
        args.get("service_request_id"), args.get("service_code"),
        o311.parse_datetime("start_date", args.get("start_date")),
        o311.parse_datetime("end_date", args.get("end_date")), args.get("status"))
    return respond(fmt, "service_requests", "request", [o311.describe_request(c) for c in cases])


@bp.get("/requests/<name>")
@bp.get("/request/<name>")
def get_request(name):
    """GET requests/{id}.{fmt}: one request's status and public progress."""
    request_id, fmt = split_format(name)
    check_jurisdiction()
    case = o311.find_case(request_id)
    if case is None:
        raise Open311Error(404, f"service_request_id {request_id!r} not found")
    return respond(fmt, "service_requests", "request", [o311.describe_request(case)])


@bp.get("/tokens/<name>")
def token(name):
    """GET tokens/{token}.{fmt}: the service_request_id a posted request's token became."""
    value, fmt = split_format(name)
    check_jurisdiction()
    stored = o311.request_for_token(value)
    return respond(fmt, "service_requests", "request",
                   [{"service_request_id": stored.case.reference, "token": stored.token}])


@bp.route("/<path:anything>", methods=["GET", "POST"])
def not_found(anything):
    """Answer unknown Open311 paths with the spec's error list rather than an HTML page."""
    raise Open311Error(404, f"{anything} not found")
