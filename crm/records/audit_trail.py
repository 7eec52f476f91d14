"""The audit trail, readable: search, CSV export, and the guard that keeps entries as written.

Entries cannot be changed or deleted through the application; the two exceptions are records
actions in their own right (retention of audit entries, and scrubbing an erased person's data
from entries about them), which run inside `audit_maintenance()`.
"""
import csv
import io
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Optional

from sqlalchemy import String, and_, cast, event, or_, select
from sqlalchemy.orm import Session, selectinload

from ..errors import Forbidden, ValidationFailed
from ..extensions import db
from ..models import AuditLog, Case, User
from ..supervisor.figures import LOCAL_TZ
from .schemas import AuditEntryOut

_MAINTENANCE = "audit_maintenance"
PAGE = 100


@contextmanager
def audit_maintenance():
    """Allow changes to audit entries for the duration (retention and erasure only)."""
    session = db.session()
    session.info[_MAINTENANCE] = session.info.get(_MAINTENANCE, 0) + 1
    try:
        yield
    finally:
        session.info[_MAINTENANCE] -= 1


def _allowed(session) -> bool:
    return session.info.get(_MAINTENANCE, 0) > 0


def _guard_flush(session, flush_context, instances):
    """Refuse an ORM change or delete of an audit entry outside audit_maintenance()."""
    if _allowed(session):
        return
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditLog) and (obj in session.deleted or session.is_modified(obj)):
            raise Forbidden("Audit entries cannot be changed or deleted")


def _guard_bulk(state):
    """Refuse bulk UPDATE/DELETE statements on the audit log outside audit_maintenance()."""
    # Core statements on the bare table (test clean-up, migrations) are not the application's writes.
    if not (state.is_update or state.is_delete) or not state.is_orm_statement or _allowed(state.session):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and getattr(table, "name", None) == AuditLog.__tablename__:
        raise Forbidden("Audit entries cannot be changed or deleted")


_installed = False


def install_guard():
    """Attach the guard to every session (once per process)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "before_flush", _guard_flush)
    event.listen(Session, "do_orm_execute", _guard_bulk)
    _installed = True


@dataclass
class AuditQuery:
    """A search of the audit trail: by person (staff member), customer, case, action and date."""

    person: Optional[str] = None  # staff email, name or id
    customer_id: Optional[int] = None
    case: Optional[str] = None  # case reference or id
    action: Optional[str] = None  # prefix: "records." finds every records action
    start: Optional[date] = None
    end: Optional[date] = None

    @classmethod
    def parse(cls, args) -> "AuditQuery":
        """Read a query from request arguments, refusing bad values with field messages."""
        errors, values = {}, {}
        for name in ("person", "case", "action"):
            value = (args.get(name) or "").strip()
            if len(value) > 200:
                errors[name] = ["at most 200 characters"]
            values[name] = value or None
        raw = (args.get("customer") or args.get("customer_id") or "").strip()
        if raw and not raw.isdigit():
            errors["customer"] = ["a customer number"]
        values["customer_id"] = int(raw) if raw.isdigit() else None
        for name, key in (("start", "from"), ("end", "to")):
            raw = (args.get(key) or "").strip()
            try:
                values[name] = date.fromisoformat(raw) if raw else None
            except ValueError:
                errors[key] = ["a date as YYYY-MM-DD"]
        if errors:
            raise ValidationFailed("Check the search", errors)
        return cls(**values)

    def as_args(self) -> dict:
        """Return the query as URL arguments."""
        out = {"person": self.person, "customer": self.customer_id, "case": self.case, "action": self.action,
               "from": self.start.isoformat() if self.start else None, "to": self.end.isoformat() if self.end else None}
        return {k: v for k, v in out.items() if v not in (None, "")}

    def conditions(self) -> list:
        """Return the SQL conditions of the query."""
        where = []
        if self.person:
            if self.person.isdigit():
                where.append(AuditLog.actor_id == int(self.person))
            else:
                like = f"%{self.person.lower()}%"
                where.append(AuditLog.actor_id.in_(select(User.id).where(or_(
                    User.email.ilike(like), User.name.ilike(like)))))
        if self.customer_id is not None:
            where.append(and_(AuditLog.target_type == "customer", AuditLog.target_id == str(self.customer_id)))
        if self.case:
            ref = self.case.strip().upper()
            case_id = db.session.scalar(select(Case.id).where(Case.reference == ref))
            if case_id is None and ref.isdigit():
                case_id = int(ref)
            where.append(and_(AuditLog.target_type == "case", AuditLog.target_id == str(case_id or -1)))
        if self.action:
            where.append(AuditLog.action.startswith(self.action, autoescape=True))
        if self.start:
            where.append(AuditLog.at >= _local_midnight(self.start))
        if self.end:
            where.append(AuditLog.at < _local_midnight(self.end + timedelta(days=1)))
        return where


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=LOCAL_TZ)


def search_audit(query: AuditQuery, before: Optional[int] = None, limit: int = PAGE) -> tuple[list[AuditLog], Optional[int]]:
    """Return a page of matching entries with their actors, newest first, and the cursor of the next page."""
    stmt = select(AuditLog).where(*query.conditions()).options(selectinload(AuditLog.actor))
    if before is not None:
        stmt = stmt.where(AuditLog.id < before)
    rows = list(db.session.scalars(stmt.order_by(AuditLog.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def actors_of(entries) -> dict:
    """Return the staff users named by these entries, by id."""
    return {e.actor_id: e.actor for e in entries if e.actor is not None}


CSV_HEADER = ["id", "at", "actor_id", "actor", "action", "target_type", "target_id", "details"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    if value is None:
        return ""
    value = str(value)
    return "'" + value if value.startswith(FORMULA_START) else value


def csv_chunks(query: AuditQuery, batch: int = 1000):
    """Yield the CSV of every matching entry in chunks, newest first, a batch of rows at a time."""
    import json

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    before = None
    while True:
        stmt = select(AuditLog).where(*query.conditions()).options(selectinload(AuditLog.actor))
        if before is not None:
            stmt = stmt.where(AuditLog.id < before)
        rows = list(db.session.scalars(stmt.order_by(AuditLog.id.desc()).limit(batch)))
        for data in AuditEntryOut(many=True).dump(rows):
            data["details"] = json.dumps(data["details"], ensure_ascii=False, sort_keys=True)
            writer.writerow([_cell(data[k]) for k in CSV_HEADER])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(rows) < batch:
            return
        before = rows[-1].id
        for entry in rows:
            db.session.expunge(entry)
