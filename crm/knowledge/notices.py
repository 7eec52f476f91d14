"""Service notices: a known problem, by service and area, announced on every channel while it is live,
and the contacts that arrived about that service meanwhile (failure demand the notice explains)."""
import re
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import and_, func, or_, select

from ..audit import audit
from ..auth.roles import NOTICE_POSTERS
from ..customers.identity import postcode_key
from ..errors import Forbidden, NotFound, ValidationFailed
from ..extensions import db
from ..models import Case, Category, Contact, Service, ServiceNotice, utcnow

_DISTRICT = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")
MAX_NOTICE_DAYS = 366


def postcode_district(postcode: Optional[str]) -> Optional[str]:
    """Return the outward code of a postcode ("CA1 1RD" -> "CA1"), or a district typed alone."""
    key = postcode_key(postcode or "")
    if not key:
        return None
    if _DISTRICT.match(key):
        return key
    return key[:-3] if len(key) > 3 and _DISTRICT.match(key[:-3]) else None


def parse_areas(raw) -> str:
    """Return postcode districts, space-separated and upper-cased, or raise naming the bad ones."""
    items = raw if isinstance(raw, (list, tuple)) else re.split(r"[\s,;]+", raw or "")
    districts, bad = [], []
    for item in items:
        key = postcode_key(str(item))
        if not key:
            continue
        (districts if _DISTRICT.match(key) else bad).append(key)
    if bad:
        raise ValidationFailed("Check the areas", {"areas": [f"not postcode districts: {', '.join(bad)}"]})
    return " ".join(dict.fromkeys(districts))[:500]


def post_notice(actor, service_code: str, message: str, ends_at: datetime, starts_at: Optional[datetime] = None,
                areas="") -> ServiceNotice:
    """Post a notice (supervisors); it shows from starts_at (now by default) until ends_at."""
    if not (actor is not None and actor.has_role(*NOTICE_POSTERS)):
        raise Forbidden("Only supervisors may post service notices")
    errors = {}
    service = db.session.scalar(select(Service).where(Service.code == (service_code or "")))
    if service is None:
        errors["service"] = [f"no service {service_code}" if service_code else "Choose a service"]
    message = (message or "").strip()
    if not message:
        errors["message"] = ["Enter the notice"]
    elif len(message) > 500:
        errors["message"] = ["must be 500 characters or fewer"]
    now = utcnow()
    starts_at = starts_at or now
    if ends_at is None:
        errors["ends_at"] = ["Enter when the notice ends"]
    elif ends_at <= starts_at or ends_at <= now:
        errors["ends_at"] = ["must be after the start and in the future"]
    elif ends_at - starts_at > timedelta(days=MAX_NOTICE_DAYS):
        errors["ends_at"] = [f"a notice lasts at most {MAX_NOTICE_DAYS} days"]
    try:
        districts = parse_areas(areas)
    except ValidationFailed as error:
        errors.update(error.fields)
        districts = ""
    if errors:
        raise ValidationFailed("Check the notice", errors)
    notice = ServiceNotice(service_id=service.id, message=message, areas=districts, starts_at=starts_at,
                           ends_at=ends_at, created_by_id=actor.id)
    db.session.add(notice)
    db.session.flush()
    forget_cached_notices()
    audit(actor, "notice.post", "service_notice", notice.id, service=service.code, areas=districts,
          ends_at=ends_at.isoformat())
    return notice


def withdraw_notice(actor, notice_id: int) -> ServiceNotice:
    """End a notice now."""
    if not (actor is not None and actor.has_role(*NOTICE_POSTERS)):
        raise Forbidden("Only supervisors may withdraw service notices")
    notice = db.session.get(ServiceNotice, notice_id)
    if notice is None:
        raise NotFound(f"No notice {notice_id}")
    if notice.withdrawn_at is None:
        notice.withdrawn_at = utcnow()
        forget_cached_notices()
        audit(actor, "notice.withdraw", "service_notice", notice.id)
    return notice


def live_notices(service_id: Optional[int] = None, postcode: Optional[str] = None, service_ids=None,
                 at: Optional[datetime] = None) -> list[ServiceNotice]:
    """Return the notices live now, for a service (or several) and, when given, a postcode's district."""
    at = at or utcnow()
    query = select(ServiceNotice).where(ServiceNotice.starts_at <= at, ServiceNotice.ends_at > at,
                                        ServiceNotice.withdrawn_at.is_(None))
    if service_id is not None:
        query = query.where(ServiceNotice.service_id == service_id)
    if service_ids is not None:
        query = query.where(ServiceNotice.service_id.in_(list(service_ids)))
    notices = list(db.session.scalars(query.order_by(ServiceNotice.starts_at.desc(), ServiceNotice.id.desc())))
    district = postcode_district(postcode)
    if district:
        notices = [n for n in notices if not n.districts() or district in n.districts()]
    return notices


def safe_live_notices(**kwargs) -> list[ServiceNotice]:
    """live_notices for page templates: a notice must never stop a page from rendering."""
    try:
        return live_notices(**kwargs)
    except Exception:  # noqa: BLE001 - the page matters more than the banner
        db.session.rollback()
        return []


# Email acknowledgements go out in batches of hundreds: they read live notices from a copy kept
# for a few seconds (posting or withdrawing here drops it), not one query per message.
_ACK_CACHE_SECONDS = 15
_ack_cache: dict = {"until": None, "notices": []}


def forget_cached_notices() -> None:
    """Drop the acknowledgements' copy of the live notices (after a post or a withdrawal)."""
    _ack_cache["until"] = None


def notice_text(service_id: Optional[int], customer=None) -> str:
    """Return a service's live notices as plain text for an email acknowledgement ("" when none).

    A notice for some postcode districts is included only when the customer's address is in one.
    """
    if service_id is None:
        return ""
    now = utcnow()
    if _ack_cache["until"] is None or _ack_cache["until"] <= now:
        _ack_cache["notices"] = [(n.service_id, n.districts(), n.message, n.ends_at) for n in safe_live_notices(at=now)]
        _ack_cache["until"] = now + timedelta(seconds=_ACK_CACHE_SECONDS)
    lines = []
    for notice_service, districts, message, ends_at in _ack_cache["notices"]:
        if notice_service != service_id or ends_at <= now:
            continue
        if districts:
            address = getattr(customer, "primary_address", None) if customer is not None else None
            if postcode_district(getattr(address, "postcode", None)) not in districts:
                continue
        lines.append(f"Please note: {message}")
    return "\n".join(lines)


def notice_demand(start: datetime, end: datetime) -> list[dict]:
    """Return, per notice live in [start, end), the contacts about its service while it was live."""
    notices = db.session.scalars(select(ServiceNotice).where(
        ServiceNotice.starts_at < end, ServiceNotice.ends_at > start).order_by(ServiceNotice.starts_at))
    rows = []
    for notice in notices:
        until = min(notice.ends_at, notice.withdrawn_at or notice.ends_at, end)
        since = max(notice.starts_at, start)
        about_service = or_(
            Contact.category.in_(select(Category.code).where(Category.service_id == notice.service_id)),
            Contact.case_id.in_(select(Case.id).where(Case.service_id == notice.service_id)))
        count = db.session.scalar(select(func.count(Contact.id)).where(
            and_(Contact.occurred_at >= since, Contact.occurred_at < until, about_service))) or 0
        rows.append({"notice": notice, "service": notice.service.name, "message": notice.message,
                     "areas": notice.areas, "from": since, "to": until, "contacts": count})
    return rows
