"""Open311 GeoReport v2 on top of the cases service: services, definitions, requests, tokens.

An Open311 `service_code` is one of our category codes (what a reporting app calls a
service is what a resident would call the problem); the group is the council service.
Raising a request is the same path as every other channel: resolve the reporter, record an
`open311` contact on their timeline, open a case that routing places.
"""
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import select

from .. import visibility
from ..cases import lifecycle
from ..cases import service as cases
from ..customers.identity import normalise_email, resolve_customer, set_case_contact, try_normalise_phone
from ..customers.timeline import record_contact
from ..errors import DomainError
from ..extensions import db
from ..models import Attachment, Case, CaseEvent, Category, FormDefinition, Open311Request, Service, utcnow

MAX_MEDIA_BYTES = 10 * 1024 * 1024
MAX_REQUESTS_LISTED = 1000
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_CHARS = 5000
DEFAULT_WINDOW = timedelta(days=90)
# Form fields Open311 carries in its own parameters (location, contact details, description),
# so they are not offered again as attributes.
CORE_FIELD_NAMES = {"location", "address", "email", "phone", "name", "first_name", "last_name", "description",
                    "details"}
FORM_TYPE_TO_DATATYPE = {
    "text": "string", "email": "string", "tel": "string", "textarea": "text", "number": "number",
    "date": "datetime", "radios": "singlevaluelist", "select": "singlevaluelist",
    "checkboxes": "multivaluelist",
}
IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
)


class Open311Error(DomainError):
    """An error the spec answers as <errors><error><code/><description/></error></errors>."""

    def __init__(self, status: int, description: str):
        super().__init__(description, status=status, code=str(status))
        self.description = description


@dataclass
class Attribute:
    """One question of a service definition."""

    code: str
    datatype: str
    required: bool
    description: str
    order: int
    values: list


def open311_services() -> list[Category]:
    """Return the categories offered as Open311 services (active, of active services)."""
    return db.session.scalars(select(Category).join(Service).where(
        Category.active.is_(True), Service.active.is_(True)).order_by(Service.name, Category.name)).all()


def find_open311_service(code: str) -> Category:
    """Return the category an Open311 service_code names, or a spec 404."""
    category = db.session.scalar(select(Category).join(Service).where(
        Category.code == code, Category.active.is_(True), Service.active.is_(True)))
    if category is None:
        raise Open311Error(404, f"service_code {code!r} not found")
    return category


def form_for(category: Category) -> Optional[FormDefinition]:
    """Return the published form definition that raises this category, if any."""
    return db.session.scalar(select(FormDefinition).where(
        FormDefinition.category_code == category.code, FormDefinition.published.is_(True))
        .order_by(FormDefinition.id))


def attributes_for(category: Category) -> list[Attribute]:
    """Return the service definition's attributes, taken from the category's web form fields."""
    form = form_for(category)
    attributes = []
    for field in (form.fields if form else None) or []:
        name, kind = field.get("name"), field.get("type", "text")
        # The location question and uploads travel in Open311's own parameters.
        if not name or name in CORE_FIELD_NAMES or field.get("location") or kind not in FORM_TYPE_TO_DATATYPE:
            continue
        options = field.get("options") or []
        values = [{"key": o.get("value", o.get("key")), "name": o.get("label", o.get("name"))}
                  if isinstance(o, dict) else {"key": str(o), "name": str(o)} for o in options]
        attributes.append(Attribute(
            code=name, datatype=FORM_TYPE_TO_DATATYPE[kind], required=bool(field.get("required")),
            description=field.get("label") or name, order=len(attributes) + 1, values=values))
    return attributes


def check_attributes(category: Category, given: dict) -> dict:
    """Refuse missing required attributes and values outside a list; keep extra ones clients add."""
    if len(given) > MAX_ATTRIBUTES:
        raise Open311Error(400, f"at most {MAX_ATTRIBUTES} attributes")
    for code, value in given.items():
        values = value if isinstance(value, list) else [value]
        if len(code) > 100 or any(len(str(v)) > MAX_ATTRIBUTE_CHARS for v in values):
            raise Open311Error(400, f"attribute[{code[:100]}] is too long")
    for attribute in attributes_for(category):
        value = given.get(attribute.code)
        values = value if isinstance(value, list) else ([value] if value not in (None, "") else [])
        if attribute.required and not values:
            raise Open311Error(400, f"attribute[{attribute.code}] is required for service {category.code}")
        if attribute.values and values:
            keys = {str(v["key"]) for v in attribute.values}
            wrong = [v for v in values if str(v) not in keys]
            if wrong:
                raise Open311Error(400, f"attribute[{attribute.code}] must be one of: {', '.join(sorted(keys))}")
    return given


def _float(name: str, raw) -> Optional[float]:
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise Open311Error(400, f"{name} must be a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise Open311Error(400, f"{name} must be a number")
    return value


def sniff_image(data: bytes) -> Optional[tuple[str, str]]:
    """Return (content type, extension) of a JPEG, PNG, GIF or WebP by its bytes, else None."""
    for signature, content_type, ext in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return content_type, ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return None


def create_request(params: dict, attributes: dict, uploads: list, client) -> Open311Request:
    """Raise a case from a POSTed service request; returns the stored request with its token."""
    code = (params.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, "service_code is required")
    category = find_open311_service(code)
    lat, long = _float("lat", params.get("lat")), _float("long", params.get("long"))
    if (lat is None) != (long is None):
        raise Open311Error(400, "lat and long must be given together")
    if lat is not None and not (-90 <= lat <= 90 and -180 <= long <= 180):
        raise Open311Error(400, "lat/long is not a point on Earth")
    address = (params.get("address_string") or "").strip()[:300] or None
    address_id = (params.get("address_id") or "").strip()[:60] or None
    if lat is None and not address and not address_id:
        raise Open311Error(400, "a location is required: lat and long, address_string or address_id")
    check_attributes(category, attributes)
    email = (params.get("email") or "").strip()
    phone = (params.get("phone") or "").strip()
    try:
        email = normalise_email(email) if email else None
    except DomainError:
        raise Open311Error(400, "email is not a valid email address") from None
    phone = try_normalise_phone(phone) if phone else None
    if params.get("phone") and phone is None:
        raise Open311Error(400, "phone is not a valid phone number")
    name = " ".join(p for p in ((params.get("first_name") or "").strip(), (params.get("last_name") or "").strip())
                    if p)[:200]
    description = (params.get("description") or "").strip()[:20000]
    media_url = (params.get("media_url") or "").strip()[:1000] or None
    if media_url and not media_url.lower().startswith(("http://", "https://")):
        raise Open311Error(400, "media_url must be an http(s) URL")
    files = []
    for upload in uploads:
        data = upload.read(MAX_MEDIA_BYTES + 1)
        if len(data) > MAX_MEDIA_BYTES:
            raise Open311Error(400, f"media larger than {MAX_MEDIA_BYTES // (1024 * 1024)} MB")
        if not data:
            continue
        kind = sniff_image(data)
        if kind is None:
            raise Open311Error(400, "media must be a JPEG, PNG, GIF or WebP image")
        files.append((upload.filename or f"media.{kind[1]}", kind[0], data))

    customer = resolve_customer(name or None, email, phone, source="open311") if (email or phone) else \
        resolve_customer(name or "Open311 reporter", None, None, source="open311")
    title = f"{category.name}: {address}" if address else category.name
    extra = "\n".join(f"{k}: {v}" for k, v in attributes.items() if v not in (None, "", []))
    contact = record_contact(customer, "open311", summary=f"Open311: {category.name}",
                             notes=description or None, category=category.code, outcome="case_raised")
    case = cases.open_case(customer, None, category.code, title, "\n\n".join(p for p in (description, extra) if p),
                           contact=contact, source_channel="open311", location_address=address,
                           latitude=lat, longitude=long)
    set_case_contact(case, email, phone)
    for filename, content_type, data in files:
        db.session.add(Attachment(case_id=case.id, filename=filename[:255], content_type=content_type,
                                  size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data))
    request = Open311Request(
        token=secrets.token_urlsafe(24), case_id=case.id, client_user_id=getattr(client, "id", None),
        service_code=category.code, address_string=address, address_id=address_id, latitude=lat,
        longitude=long, device_id=(params.get("device_id") or "")[:120] or None,
        account_id=(params.get("account_id") or "")[:120] or None, media_url=media_url,
        attributes={k: v for k, v in attributes.items()})
    db.session.add(request)
    db.session.flush()
    return request


def parse_datetime(name: str, raw: Optional[str]) -> Optional[datetime]:
    """Read a W3C date-time filter (an offset-less one is taken as UTC)."""
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C date-time such as 2026-01-31T09:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def find_case(service_request_id: str) -> Optional[Case]:
    """Return the case a service_request_id names, if Open311 may publish it (else None: not found)."""
    return db.session.scalar(select(Case).where(Case.reference == service_request_id.strip().upper(),
                                                visibility.open311_condition()))


def list_requests(ids: Optional[str], service_code: Optional[str], start: Optional[datetime],
                  end: Optional[datetime], status: Optional[str]) -> list[Case]:
    """Return cases for GET requests with the spec's filters (default: the last 90 days, at most 1000)."""
    query = select(Case).where(visibility.open311_condition())
    if ids:
        wanted = [i.strip().upper() for i in ids.split(",") if i.strip()][:MAX_REQUESTS_LISTED]
        return db.session.scalars(query.where(Case.reference.in_(wanted)).order_by(Case.id)).all()
    if service_code:
        codes = [c.strip() for c in service_code.split(",") if c.strip()]
        query = query.where(Case.category.in_(codes))
    if status:
        states = {s.strip().lower() for s in status.split(",") if s.strip()}
        if not states <= {"open", "closed"}:
            raise Open311Error(400, "status must be open or closed")
        if states == {"open"}:
            query = query.where(Case.status.in_(lifecycle.OPEN_STATUSES))
        elif states == {"closed"}:
            query = query.where(Case.status.in_(lifecycle.DONE_STATUSES))
    if start is None and end is None:
        start = utcnow() - DEFAULT_WINDOW
    if start is not None and end is not None and end < start:
        raise Open311Error(400, "end_date is before start_date")
    if start is not None:
        query = query.where(Case.created_at >= start)
    if end is not None:
        query = query.where(Case.created_at <= end)
    return db.session.scalars(query.order_by(Case.created_at.desc(), Case.id.desc())
                              .limit(MAX_REQUESTS_LISTED)).all()


def open311_status(case: Case) -> str:
    """Map our lifecycle onto Open311's two states."""
    return "closed" if case.status in lifecycle.DONE_STATUSES else "open"


def describe_request(case: Case) -> dict:
    """Return the fields of a <request> in GET requests (public information only: never notes)."""
    shown = case
    if case.merged_into_id:  # a duplicate reports the progress of the case that was kept, if that is public
        kept = db.session.get(Case, case.merged_into_id)
        shown = kept if kept is not None and visibility.open311_public(kept) else case
    latest_update = db.session.scalar(
        select(CaseEvent).where(CaseEvent.case_id == shown.id, CaseEvent.public.is_(True))
        .order_by(CaseEvent.occurred_at.desc(), CaseEvent.id.desc()).limit(1))
    stored = db.session.scalar(select(Open311Request).where(Open311Request.case_id == case.id))
    notes = latest_update.body if latest_update else None
    if case.merged_into_id and shown is not case:
        notes = f"Merged into {shown.reference}." + (f" {notes}" if notes else "")
    category = db.session.scalar(select(Category).where(Category.code == case.category))
    return {
        "service_request_id": case.reference,
        "status": open311_status(shown),
        "status_notes": notes,
        "service_name": category.name if category else case.category,
        "service_code": case.category,
        "description": visibility.open311_description(case),
        "agency_responsible": shown.service.name,
        "service_notice": None,
        "requested_datetime": case.created_at.isoformat(),
        "updated_datetime": max(shown.updated_at or shown.created_at, case.updated_at or case.created_at).isoformat(),
        "expected_datetime": shown.sla_due_at.isoformat() if shown.sla_due_at and shown.status not in
        lifecycle.DONE_STATUSES else None,
        "address": case.location_address,
        "address_id": stored.address_id if stored else None,
        "zipcode": None,
        "lat": case.latitude,
        "long": case.longitude,
        "media_url": stored.media_url if stored else None,
    }


def request_for_token(token: str) -> Open311Request:
    """Return the stored request a token names, or a spec 404."""
    found = db.session.scalar(select(Open311Request).where(Open311Request.token == token))
    if found is None:
        raise Open311Error(404, f"token {token!r} not found")
    return found


# mySociety's GeoReport extension (what FixMyStreet polls to fetch updates): our lifecycle
# mapped onto its states.
UPDATE_STATES = {"new": "OPEN", "open": "OPEN", "awaiting_customer": "OPEN", "in_progress": "IN_PROGRESS",
                 "resolved": "FIXED", "closed": "CLOSED"}
STATUS_EVENT_KINDS = ("status_changed", "reopened")


def request_updates(start: Optional[datetime], end: Optional[datetime]) -> list[dict]:
    """Return the updates of Open311-raised cases in a window: public updates and status changes.

    Internal notes never appear; a status change shows its new state but not the officer's reason.
    """
    if start is None:
        start = (end or utcnow()) - timedelta(days=1)
    if end is not None and end < start:
        raise Open311Error(400, "end_date is before start_date")
    query = (select(CaseEvent, Case).join(Case, Case.id == CaseEvent.case_id)
             .join(Open311Request, Open311Request.case_id == Case.id)
             .where(visibility.open311_condition(), CaseEvent.occurred_at >= start,
                    (CaseEvent.public.is_(True)) | CaseEvent.kind.in_(STATUS_EVENT_KINDS + ("merged",))))
    if end is not None:
        query = query.where(CaseEvent.occurred_at <= end)
    rows = db.session.execute(query.order_by(CaseEvent.occurred_at, CaseEvent.id).limit(MAX_REQUESTS_LISTED)).all()
    updates = []
    for event, case in rows:
        if event.kind == "merged":
            state = "DUPLICATE"
        elif event.kind in STATUS_EVENT_KINDS:
            state = UPDATE_STATES.get(event.to_value, "OPEN")
        else:
            state = UPDATE_STATES.get(_status_at(case, event), "OPEN")
        updates.append({
            "update_id": str(event.id),
            "service_request_id": case.reference,
            "status": state,
            "updated_datetime": event.occurred_at.isoformat(),
            "description": event.body if event.public else "",
            "media_url": None,
        })
    return updates


def _status_at(case: Case, event: CaseEvent) -> str:
    """Return the status a case had when an event happened (the last status change before it)."""
    last = db.session.scalar(select(CaseEvent.to_value).where(
        CaseEvent.case_id == case.id, CaseEvent.kind.in_(STATUS_EVENT_KINDS), CaseEvent.id < event.id)
        .order_by(CaseEvent.id.desc()).limit(1))
    return last or "new"
