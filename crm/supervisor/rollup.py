"""Keep contact_daily_totals in step with contacts, in the same transaction.

A session hook turns every contact the ORM inserts, changes (in a counted column) or deletes
into +1/-1 deltas of its (day, channel, direction, outcome, category) cell and applies them
with an atomic upsert (INSERT ... ON CONFLICT DO UPDATE), so concurrent writers in several
processes add up correctly. Bulk loads that bypass the ORM (bench/datagen.py) run
`rebuild_totals()` afterwards (`flask --app wsgi crm rebuild-report-totals`).
"""
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Optional

from sqlalchemy import and_, case, delete, event, func, inspect, literal_column, select

from ..extensions import db
from ..models import Contact, ContactDailyTotal, utcnow
from .figures import LOCAL_TZ

COUNTED = ("occurred_at", "channel", "direction", "outcome", "category", "started_at", "ended_at")
Key = tuple[date, str, str, str, str]


def local_day(instant: datetime) -> date:
    """Return the council-local date of an instant."""
    return instant.astimezone(LOCAL_TZ).date()


def handle_seconds(started: Optional[datetime], ended: Optional[datetime]) -> Optional[int]:
    """Return whole seconds of handling, or None when the contact has no start and end."""
    if started is None or ended is None:
        return None
    return max(0, round((ended - started).total_seconds()))


def _cell(values: dict) -> tuple[Key, int, int]:
    """Return (key, handled 0/1, seconds) of a contact's counted values."""
    seconds = handle_seconds(values["started_at"], values["ended_at"])
    key = (local_day(values["occurred_at"] or utcnow()), values["channel"], values["direction"] or "inbound",
           values["outcome"] or "pending", values["category"] or "")
    return key, int(seconds is not None), seconds or 0


def _current(contact: Contact) -> dict:
    return {name: getattr(contact, name) for name in COUNTED}


def _add(deltas: dict, values: dict, sign: int) -> None:
    key, handled, seconds = _cell(values)
    cell = deltas[key]
    cell[0] += sign
    cell[1] += sign * handled
    cell[2] += sign * seconds


def _changed(contact: Contact) -> bool:
    state = inspect(contact)
    return any(state.attrs[name].history.has_changes() for name in COUNTED)


def _before_flush(session, flush_context, instances):
    """Take away the cells of contacts about to change or go, as the database still has them.

    The old values are read from the database, not from attribute history: an attribute set on
    an expired object keeps no record of what it replaced.
    """
    leaving = [c for c in session.deleted if isinstance(c, Contact)]
    changing = [c for c in session.dirty if isinstance(c, Contact) and _changed(c)]
    ids = [c.id for c in leaving + changing if c.id is not None]
    if not ids:
        return
    deltas = session.info.setdefault("rollup_deltas", defaultdict(lambda: [0, 0, 0]))
    columns = [Contact.__table__.c[name] for name in COUNTED]
    for row in session.connection().execute(select(*columns).where(Contact.__table__.c.id.in_(ids))):
        _add(deltas, dict(zip(COUNTED, row)), -1)
    session.info["rollup_changed"] = [c for c in changing if c.id is not None]


def _after_flush(session, flush_context):
    """Add the cells of new and changed contacts, then apply every delta of this flush."""
    deltas = session.info.pop("rollup_deltas", None) or defaultdict(lambda: [0, 0, 0])
    for obj in session.new:
        if isinstance(obj, Contact):
            _add(deltas, _current(obj), +1)
    for obj in session.info.pop("rollup_changed", []):
        _add(deltas, _current(obj), +1)
    changes = {k: v for k, v in deltas.items() if any(v)}
    if changes:
        apply_deltas(session.connection(), changes)


def apply_deltas(connection, changes: dict) -> None:
    """Add counts to their cells atomically (an upsert per cell)."""
    table = ContactDailyTotal.__table__
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    for (day, channel, direction, outcome, category), (contacts, handled, seconds) in sorted(changes.items()):
        stmt = insert(table).values(day=day, channel=channel, direction=direction, outcome=outcome,
                                    category=category, contacts=contacts, handled=handled, handle_seconds=seconds)
        stmt = stmt.on_conflict_do_update(
            index_elements=["day", "channel", "direction", "outcome", "category"],
            set_={"contacts": table.c.contacts + stmt.excluded.contacts,
                  "handled": table.c.handled + stmt.excluded.handled,
                  "handle_seconds": table.c.handle_seconds + stmt.excluded.handle_seconds},
        )
        connection.execute(stmt)


def install_session_hooks() -> None:
    """Listen to the app-wide session once."""
    for name, fn in (("before_flush", _before_flush), ("after_flush", _after_flush)):
        if not event.contains(db.session, name, fn):
            event.listen(db.session, name, fn)


def rebuild_totals(start: Optional[date] = None, end: Optional[date] = None, progress=None) -> int:
    """Recompute the totals of the days from `start` to `end` (default: all) from contacts; never commits.

    Works a month at a time so each pass is one index range scan. Returns the cells written.
    """
    from .reports import ReportFilters, bucket_boundaries, bucket_expression, seconds_between

    bounds = db.session.execute(select(func.min(Contact.occurred_at), func.max(Contact.occurred_at))).one()
    if bounds[0] is None:
        db.session.execute(delete(ContactDailyTotal))
        return 0
    start = start or local_day(bounds[0])
    end = end or local_day(bounds[1])
    db.session.execute(delete(ContactDailyTotal).where(ContactDailyTotal.day >= start, ContactDailyTotal.day <= end))
    handled = and_(Contact.started_at.is_not(None), Contact.ended_at.is_not(None))
    written = 0
    month = start.replace(day=1)
    while month <= end:
        next_month = (month + timedelta(days=32)).replace(day=1)
        filters = ReportFilters(max(month, start), min(next_month - timedelta(days=1), end))
        boundaries = bucket_boundaries(filters, "day")
        bucket = bucket_expression(Contact.occurred_at, boundaries).label("bucket")
        category = func.coalesce(Contact.category, literal_column("''")).label("category")
        rows = db.session.execute(
            select(bucket, Contact.channel, Contact.direction, Contact.outcome, category, func.count(),
                   func.sum(case((handled, 1), else_=0)),
                   func.sum(case((handled, func.round(seconds_between(Contact.started_at, Contact.ended_at))),
                                 else_=0)))
            .where(Contact.occurred_at >= filters.start_at, Contact.occurred_at < filters.end_at)
            .group_by(bucket, Contact.channel, Contact.direction, Contact.outcome, category)
        ).all()
        if rows:
            db.session.execute(ContactDailyTotal.__table__.insert(), [
                {"day": date.fromisoformat(label), "channel": channel, "direction": direction, "outcome": outcome,
                 "category": category, "contacts": count, "handled": int(n or 0), "handle_seconds": int(s or 0)}
                for label, channel, direction, outcome, category, count, n, s in rows])
        written += len(rows)
        if progress:
            progress(month, written)
        month = next_month
    return written
