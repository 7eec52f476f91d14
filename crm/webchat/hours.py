"""Opening hours: whether webchat is staffed now and when it next opens (bank holidays closed)."""
from datetime import datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from sqlalchemy import select

from .. import bank_holidays
from ..cases import sla
from ..extensions import db
from ..models import OpeningHours, utcnow
from .rules import cfg


def local_now(now: Optional[datetime] = None) -> datetime:
    """Return now in the council's time zone."""
    return (now or utcnow()).astimezone(ZoneInfo(cfg("WEBCHAT_TIMEZONE")))


def is_bank_holiday(day) -> bool:
    """Say whether a date is a bank holiday where the council is (the cases' part of the UK unless webchat has its own)."""
    return bank_holidays.is_bank_holiday(day, cfg("WEBCHAT_HOLIDAY_SUBDIV") or sla.setting("CASE_HOLIDAY_SUBDIVISION"))


def is_open(now: Optional[datetime] = None) -> bool:
    """Say whether webchat is staffed now; with no opening hours configured it always is."""
    hours = db.session.scalars(select(OpeningHours)).all()
    if not hours:
        return True
    here = local_now(now)
    if is_bank_holiday(here.date()):
        return False
    return any(h.weekday == here.weekday() and h.opens <= here.time() < h.closes for h in hours)


def next_opening(now: Optional[datetime] = None) -> Optional[datetime]:
    """Return when webchat next opens (local time), or None when no hours are configured."""
    hours = db.session.scalars(select(OpeningHours)).all()
    if not hours:
        return None
    here = local_now(now)
    for days_ahead in range(0, 15):
        day = (here + timedelta(days=days_ahead)).date()
        if is_bank_holiday(day):
            continue
        for h in sorted((h for h in hours if h.weekday == day.weekday()), key=lambda h: h.opens):
            opening = datetime.combine(day, h.opens, here.tzinfo)
            if opening > here or (days_ahead == 0 and h.opens <= here.time() < h.closes):
                return opening
    return None
