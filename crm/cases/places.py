"""Where a problem is, in words the caller uses: an address, a street or a postcode.

No geocoding service is called (the centre may have no internet): coordinates come only from
what the database already knows, other reports at the same address or postcode.
"""
import re
from typing import Optional

from sqlalchemy import func, select

from ..extensions import db
from ..models import Case

POSTCODE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?)\s*(\d[A-Z]{2})\b", re.IGNORECASE)


def find_postcode(text: str) -> Optional[str]:
    """Return the UK postcode written in a piece of text, as 'CA12 4NR', or None."""
    found = POSTCODE.search(text or "")
    return f"{found.group(1).upper()} {found.group(2).upper()}" if found else None


def known_coordinates(place: str) -> tuple[Optional[float], Optional[float]]:
    """Return (latitude, longitude) of a place from earlier cases at that address, else at its postcode."""
    place = (place or "").strip()[:300]
    if not place:
        return None, None
    located = select(Case.latitude, Case.longitude).where(Case.latitude.is_not(None), Case.longitude.is_not(None))
    same = db.session.execute(located.where(func.lower(Case.location_address) == place.lower())
                              .order_by(Case.created_at.desc()).limit(1)).first()
    if same:
        return float(same[0]), float(same[1])
    postcode = find_postcode(place)
    if postcode is None:
        return None, None
    outward, inward = postcode.split(" ")
    rows = db.session.execute(located.where(
        Case.location_address.ilike(f"%{outward} {inward}%") | Case.location_address.ilike(f"%{outward}{inward}%"))
        .order_by(Case.created_at.desc()).limit(50)).all()
    if not rows:
        return None, None
    # The middle of the postcode's earlier reports: a postcode covers a few dozen houses.
    return (sum(float(r[0]) for r in rows) / len(rows), sum(float(r[1]) for r in rows) / len(rows))
