"""Reports for supervisors: contacts, first-contact resolution, handle time, SLA, failure demand,
agent states and channel shift, plus the suppressed open-data extract.

Definitions (shown on the reports page too):

- A report counts **inbound** contacts (demand from residents) whose `occurred_at` falls in the
  range; days and months are council (Europe/London) days and months.
- **First-contact resolution** = contacts resolved at first contact ÷ contacts with a final
  outcome (pending and abandoned contacts are left out: nobody has answered them yet).
- **Average handle time** = mean of ended − started over contacts that have both.
- **Failure demand** = contacts about a case that was already open when they arrived (linked to
  the case, after it was raised, not the contact that raised it, before it was resolved).
- **SLA met**: of the cases raised in the range whose target has been reached (answered or due),
  the share answered (first public response) or resolved by the due time.
- **Cost per contact** is configurable per channel (ChannelCost), defaults in DEFAULT_COST_PENCE.

Buckets (days, months) are made by a CASE over precomputed UTC boundaries, so the database
groups by council-local days without time-zone support (SQLite has none) and scans each row once
through the (occurred_at, ...) index.
"""
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Optional

from sqlalchemy import and_, case, func, literal, or_, select

from ..errors import ValidationFailed
from ..extensions import db
from ..models import (
    CHANNELS, AgentStateChange, Case, Category, ChannelCost, Contact, ContactDailyTotal, Conversation, Queue,
    Service, User,
)
from .figures import LOCAL_TZ, current_time

# Socitm 2014 (DESIGN.md): face to face £8.62, phone £2.83, web £0.15. Channels that need an
# agent to read and answer each contact (email, webchat, letter) are priced as a call, which
# is conservative: only a real move to self-service (web forms, Open311) shows a saving.
DEFAULT_COST_PENCE = {
    "face_to_face": 862,
    "phone": 283,
    "letter": 283,
    "email": 283,
    "webchat": 283,
    "web_form": 15,
    "open311": 15,
}
# Journeys a help article answered (crm.knowledge.selfservice), shown beside the channels.
SELF_SERVICE = "self_service"
FINAL_OUTCOMES_EXCLUDED = ("pending", "abandoned")
MAX_RANGE_DAYS = 1100
DAILY_BUCKETS_UP_TO_DAYS = 92
SUPPRESS_BELOW = 10


@dataclass(frozen=True)
class ReportFilters:
    """What a report covers: council-local dates (inclusive) and optional service/queue/channel."""

    start: date
    end: date
    service: Optional[str] = None
    queue: Optional[str] = None
    channel: Optional[str] = None

    @property
    def start_at(self) -> datetime:
        return local_midnight(self.start)

    @property
    def end_at(self) -> datetime:
        """The first instant after the range (midnight after the last day)."""
        return local_midnight(self.end + timedelta(days=1))

    def as_query(self) -> dict:
        """Return the filters as query-string arguments (for CSV links)."""
        args = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        for key in ("service", "queue", "channel"):
            if getattr(self, key):
                args[key] = getattr(self, key)
        return args


def local_midnight(day: date) -> datetime:
    """Return the UTC instant of midnight at the start of a council-local day."""
    from datetime import timezone

    return datetime.combine(day, time(0), LOCAL_TZ).astimezone(timezone.utc)


def _parse_date(raw, name: str) -> date:
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise ValidationFailed(f"{name} is not a date", {name: ["use YYYY-MM-DD"]}) from None


def parse_filters(args, default_days: int = 30) -> ReportFilters:
    """Read and check report filters from query arguments; bad input raises ValidationFailed."""
    today = current_time().astimezone(LOCAL_TZ).date()
    end = _parse_date(args["to"], "to") if args.get("to") else today
    start = _parse_date(args["from"], "from") if args.get("from") else end - timedelta(days=default_days - 1)
    if start > end:
        raise ValidationFailed("The range ends before it starts", {"from": ["must be on or before to"]})
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValidationFailed("Range too long", {"to": [f"at most {MAX_RANGE_DAYS} days"]})
    channel = (args.get("channel") or "").strip() or None
    if channel and channel not in CHANNELS:
        raise ValidationFailed("Unknown channel", {"channel": [f"must be one of {', '.join(CHANNELS)}"]})
    service = (args.get("service") or "").strip() or None
    if service and db.session.scalar(select(Service.id).where(Service.code == service)) is None:
        raise ValidationFailed("Unknown service", {"service": ["no service with that code"]})
    queue = (args.get("queue") or "").strip() or None
    if queue and db.session.scalar(select(Queue.id).where(Queue.code == queue)) is None:
        raise ValidationFailed("Unknown queue", {"queue": ["no queue with that code"]})
    return ReportFilters(start, end, service, queue, channel)


# --- SQL helpers ---------------------------------------------------------------------------

def _dialect() -> str:
    return db.session.get_bind().dialect.name


def seconds_between(start, end):
    """SQL: seconds from one timestamp column to another, on SQLite and PostgreSQL."""
    if _dialect() == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def bucket_boundaries(filters: ReportFilters, unit: str) -> list[tuple[str, datetime]]:
    """Return (label, UTC start) of each day or month bucket in the range."""
    buckets = []
    if unit == "day":
        day = filters.start
        while day <= filters.end:
            buckets.append((day.isoformat(), local_midnight(day)))
            day += timedelta(days=1)
    else:
        month = filters.start.replace(day=1)
        while month <= filters.end:
            start = max(month, filters.start)
            buckets.append((month.strftime("%Y-%m"), local_midnight(start)))
            month = (month + timedelta(days=32)).replace(day=1)
    return buckets


def bucket_expression(column, boundaries: list[tuple[str, datetime]]):
    """SQL CASE giving the label of the bucket a timestamp falls in (rows are pre-filtered)."""
    whens = [(column < boundaries[i + 1][1], literal(boundaries[i][0]))
             for i in range(len(boundaries) - 1)]
    last = literal(boundaries[-1][0])
    return case(*whens, else_=last) if whens else last


def bucket_unit(filters: ReportFilters) -> str:
    """Days for ranges up to a quarter, months beyond."""
    return "day" if (filters.end - filters.start).days + 1 <= DAILY_BUCKETS_UP_TO_DAYS else "month"


def contact_conditions(filters: ReportFilters) -> list:
    """Return the WHERE conditions on Contact for the filters."""
    conditions = [Contact.occurred_at >= filters.start_at, Contact.occurred_at < filters.end_at,
                  Contact.direction == "inbound"]
    if filters.channel:
        conditions.append(Contact.channel == filters.channel)
    if filters.service:
        conditions.append(Contact.category.in_(
            select(Category.code).join(Service, Service.id == Category.service_id)
            .where(Service.code == filters.service)))
    if filters.queue:
        queue_id = select(Queue.id).where(Queue.code == filters.queue).scalar_subquery()
        conditions.append(or_(
            Contact.conversation_id.in_(select(Conversation.id).where(Conversation.queue_id == queue_id)),
            Contact.case_id.in_(select(Case.id).where(Case.queue_id == queue_id)),
        ))
    return conditions


def channel_costs() -> dict[str, int]:
    """Return the cost per contact of every channel in pence (stored values over defaults)."""
    costs = dict(DEFAULT_COST_PENCE)
    for row in db.session.scalars(select(ChannelCost)):
        costs[row.channel] = row.pence
    return costs


def _gbp(pence: float) -> float:
    return round(pence / 100.0, 2)


def _ratio(numerator: int, denominator: int) -> Optional[float]:
    return round(numerator / denominator, 4) if denominator else None


# --- Reports -------------------------------------------------------------------------------

@dataclass
class ContactGroups:
    """Contacts of a range counted two ways, each small: per period and channel, and per kind."""

    boundaries: list
    per_period: list  # (period label, channel, contacts)
    per_kind: list  # (channel, outcome, category, contacts, handled, handle seconds)


def _groups_from_contacts(filters: ReportFilters, boundaries) -> ContactGroups:
    """Count the range's contacts themselves (index range scans on ix_contacts_report)."""
    conditions = contact_conditions(filters)
    handled = and_(Contact.started_at.is_not(None), Contact.ended_at.is_not(None))
    bucket = bucket_expression(Contact.occurred_at, boundaries).label("bucket")
    per_period = db.session.execute(
        select(bucket, Contact.channel, func.count()).where(*conditions).group_by(bucket, Contact.channel)
    ).all()
    per_kind = db.session.execute(
        select(
            Contact.channel, Contact.outcome, Contact.category, func.count(),
            func.sum(case((handled, 1), else_=0)),
            func.sum(case((handled, func.round(seconds_between(Contact.started_at, Contact.ended_at))), else_=0)),
        ).where(*conditions).group_by(Contact.channel, Contact.outcome, Contact.category)
    ).all()
    return ContactGroups(boundaries, per_period, per_kind)


def _totals_conditions(filters: ReportFilters) -> list:
    """Return the filters as conditions on the daily rollup (inbound contacts only)."""
    totals = ContactDailyTotal
    conditions = [totals.day >= filters.start, totals.day <= filters.end, totals.direction == "inbound"]
    if filters.channel:
        conditions.append(totals.channel == filters.channel)
    if filters.service:
        conditions.append(totals.category.in_(
            select(Category.code).join(Service, Service.id == Category.service_id)
            .where(Service.code == filters.service)))
    return conditions


def _groups_from_totals(filters: ReportFilters, boundaries, unit: str) -> ContactGroups:
    """Count the same from the daily rollup; the database sums, Python gets a few hundred rows."""
    totals = ContactDailyTotal
    conditions = _totals_conditions(filters)
    per_period = defaultdict(int)
    for day, channel, count in db.session.execute(
        select(totals.day, totals.channel, func.sum(totals.contacts)).where(*conditions)
        .group_by(totals.day, totals.channel)
    ):
        label = day.isoformat() if unit == "day" else day.strftime("%Y-%m")
        per_period[(label, channel)] += int(count or 0)
    per_kind = db.session.execute(
        select(totals.channel, totals.outcome, totals.category, func.sum(totals.contacts),
               func.sum(totals.handled), func.sum(totals.handle_seconds))
        .where(*conditions).group_by(totals.channel, totals.outcome, totals.category)
    ).all()
    return ContactGroups(
        boundaries,
        [(label, channel, n) for (label, channel), n in per_period.items() if n],
        [(ch, out, cat or None, int(n or 0), int(h or 0), int(sec or 0)) for ch, out, cat, n, h, sec in per_kind if n],
    )


def contact_groups(filters: ReportFilters, unit: str) -> ContactGroups:
    """Count the range's inbound contacts per period and channel, and per channel/outcome/category.

    The daily rollup answers every filter but the queue, which needs each contact's conversation
    or case; a queue report reads the contacts themselves.
    """
    boundaries = bucket_boundaries(filters, unit)
    if filters.queue:
        return _groups_from_contacts(filters, boundaries)
    return _groups_from_totals(filters, boundaries, unit)


def contacts_report(filters: ReportFilters) -> dict:
    """Return contacts by channel, outcome, category and day/month, FCR, handle time and cost."""
    unit = bucket_unit(filters)
    groups = contact_groups(filters, unit)
    boundaries = groups.boundaries
    by_channel, by_outcome, by_category = defaultdict(int), defaultdict(int), defaultdict(int)
    handled_count, handled_seconds = defaultdict(int), defaultdict(float)
    series = {label: defaultdict(int) for label, _ in boundaries}
    for channel, outcome, category, count, n_handled, seconds in groups.per_kind:
        by_channel[channel] += count
        by_outcome[outcome] += count
        by_category[category or "uncategorised"] += count
        handled_count[channel] += int(n_handled or 0)
        handled_seconds[channel] += float(seconds or 0)
    for label, channel, count in groups.per_period:
        series[label][channel] += count

    total = sum(by_channel.values())
    finished = total - sum(by_outcome.get(o, 0) for o in FINAL_OUTCOMES_EXCLUDED)
    costs = channel_costs()
    cost_pence = {ch: n * costs.get(ch, costs["phone"]) for ch, n in by_channel.items()}
    baseline_pence = total * costs["phone"]
    served = sum(self_served_journeys(filters, boundaries).values())
    return {
        "from": filters.start.isoformat(),
        "to": filters.end.isoformat(),
        "total": total,
        "by_channel": dict(sorted(by_channel.items())),
        "by_outcome": dict(sorted(by_outcome.items())),
        "by_category": dict(sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))),
        "first_contact_resolution": _ratio(by_outcome.get("resolved_first_time", 0), finished),
        "average_handle_seconds": {
            ch: round(handled_seconds[ch] / handled_count[ch]) for ch in sorted(handled_count) if handled_count[ch]
        },
        "estimated_cost_gbp": {ch: _gbp(p) for ch, p in sorted(cost_pence.items())},
        "estimated_cost_total_gbp": _gbp(sum(cost_pence.values())),
        "all_phone_baseline_gbp": _gbp(baseline_pence),
        "saving_gbp": _gbp(baseline_pence - sum(cost_pence.values())),
        # Journeys a help article answered: contacts that did not happen, each priced at the web rate.
        "self_served_journeys": served,
        "self_service_saving_gbp": _gbp(served * (costs["phone"] - costs.get("web_form", DEFAULT_COST_PENCE["web_form"]))),
        "series_unit": unit,
        "series": [{"period": label, **dict(sorted(series[label].items()))} for label, _ in boundaries],
    }


def self_served_journeys(filters: ReportFilters, boundaries) -> dict[str, int]:
    """Return journeys that ended in self-service per period (help marked useful, a contact not needed)."""
    from ..models import SelfServiceEvent

    if filters.channel and filters.channel != SELF_SERVICE:
        return {}
    label = bucket_expression(SelfServiceEvent.occurred_at, boundaries)
    query = (select(label, func.count()).where(SelfServiceEvent.occurred_at >= filters.start_at,
                                               SelfServiceEvent.occurred_at < filters.end_at).group_by(label))
    if filters.service:
        query = query.where(SelfServiceEvent.service_id.in_(select(Service.id).where(Service.code == filters.service)))
    return {period: count for period, count in db.session.execute(query)}


def channel_shift(filters: ReportFilters) -> dict:
    """Return contacts and estimated cost per channel per month, and the saving against all-phone.

    Journeys that ended in self-service count as a channel of their own, priced at the web rate:
    each is a contact that did not happen.
    """
    groups = contact_groups(filters, "month")
    boundaries = groups.boundaries
    counts = {label: defaultdict(int) for label, _ in boundaries}
    for label, channel, count in groups.per_period:
        counts[label][channel] += count
    for label, count in self_served_journeys(filters, boundaries).items():
        counts[label][SELF_SERVICE] += count
    costs = channel_costs()
    costs.setdefault(SELF_SERVICE, costs.get("web_form", DEFAULT_COST_PENCE["web_form"]))
    months = []
    for label, _ in boundaries:
        by_channel = counts[label]
        total = sum(by_channel.values())
        cost = sum(n * costs.get(ch, costs["phone"]) for ch, n in by_channel.items())
        baseline = total * costs["phone"]
        months.append({
            "month": label,
            "contacts": dict(sorted(by_channel.items())),
            "total": total,
            "self_service_share": _ratio(sum(n for ch, n in by_channel.items()
                                             if costs.get(ch, 0) < costs["phone"]), total),
            "estimated_cost_gbp": _gbp(cost),
            "all_phone_baseline_gbp": _gbp(baseline),
            "saving_gbp": _gbp(baseline - cost),
        })
    return {
        "costs_gbp": {ch: _gbp(p) for ch, p in sorted(costs.items())},
        "months": months,
        "saving_gbp": round(sum(m["saving_gbp"] for m in months), 2),
    }


def sla_report(filters: ReportFilters) -> list[dict]:
    """Return, per service, the share of cases raised in the range that met each SLA target."""
    now = current_time()
    conditions = [Case.created_at >= filters.start_at, Case.created_at < filters.end_at,
                  Case.merged_into_id.is_(None)]
    if filters.service:
        conditions.append(Service.code == filters.service)
    if filters.queue:
        conditions.append(Case.queue_id == select(Queue.id).where(Queue.code == filters.queue).scalar_subquery())
    if filters.channel:
        conditions.append(Case.source_channel == filters.channel)
    first_due = Case.first_response_due_at
    resolve_due = Case.sla_due_at
    first_measured = and_(first_due.is_not(None), or_(Case.first_responded_at.is_not(None), first_due <= now))
    first_met = and_(first_due.is_not(None), Case.first_responded_at.is_not(None),
                     Case.first_responded_at <= first_due)
    resolve_measured = and_(resolve_due.is_not(None), or_(Case.resolved_at.is_not(None), resolve_due <= now))
    resolve_met = and_(resolve_due.is_not(None), Case.resolved_at.is_not(None), Case.resolved_at <= resolve_due)
    rows = db.session.execute(
        select(
            Service.code, Service.name, func.count(),
            func.sum(case((first_measured, 1), else_=0)), func.sum(case((first_met, 1), else_=0)),
            func.sum(case((resolve_measured, 1), else_=0)), func.sum(case((resolve_met, 1), else_=0)),
        ).join(Service, Service.id == Case.service_id).where(*conditions)
        .group_by(Service.code, Service.name).order_by(Service.name)
    ).all()
    report = []
    for code, name, raised, f_measured, f_met, r_measured, r_met in rows:
        report.append({
            "service": code, "name": name, "cases": raised,
            "first_response_measured": int(f_measured or 0), "first_response_met": int(f_met or 0),
            "first_response_met_ratio": _ratio(int(f_met or 0), int(f_measured or 0)),
            "resolution_measured": int(r_measured or 0), "resolution_met": int(r_met or 0),
            "resolution_met_ratio": _ratio(int(r_met or 0), int(r_measured or 0)),
        })
    return report


def contact_total(filters: ReportFilters) -> int:
    """Return the number of inbound contacts the filters cover."""
    if filters.queue:
        return db.session.scalar(select(func.count()).select_from(Contact).where(*contact_conditions(filters))) or 0
    return sum(row[3] for row in contact_groups(filters, "month").per_kind)


def failure_demand(filters: ReportFilters, top: int = 10) -> dict:
    """Return repeat contacts about an already open case, and the case categories causing most."""
    # The range's case-linked contacts first (a range scan on occurred_at), then their cases by
    # key. Left to itself PostgreSQL walked every case-linked contact of all time through
    # ix_contacts_case_id (0.6 s at 2M contacts): COALESCE hides case_id from that index, and
    # MATERIALIZED keeps the join in this order.
    linked = (
        select(Contact.id, Contact.case_id, Contact.occurred_at)
        .where(*contact_conditions(filters), func.coalesce(Contact.case_id, 0) > 0)
        .cte("linked_contacts").prefix_with("MATERIALIZED", dialect="postgresql")
    )
    rows = db.session.execute(
        select(Service.code, Case.category, func.count(), func.count(func.distinct(Case.id)))
        .select_from(linked)
        .join(Case, Case.id == linked.c.case_id)
        .join(Service, Service.id == Case.service_id)
        .where(
            linked.c.occurred_at > Case.created_at,
            or_(Case.raised_by_contact_id.is_(None), Case.raised_by_contact_id != linked.c.id),
            or_(Case.resolved_at.is_(None), Case.resolved_at > linked.c.occurred_at),
        )
        .group_by(Service.code, Case.category)
    ).all()
    total_contacts = contact_total(filters)
    causes = sorted(
        ({"service": s, "category": c, "repeat_contacts": n, "cases": k} for s, c, n, k in rows),
        key=lambda r: (-r["repeat_contacts"], r["service"], r["category"]),
    )
    repeats = sum(r["repeat_contacts"] for r in causes)
    return {
        "repeat_contacts": repeats,
        "contacts": total_contacts,
        "share": _ratio(repeats, total_contacts),
        "top_causes": causes[:top],
    }


def agent_states(filters: ReportFilters) -> list[dict]:
    """Return each agent's seconds in every presence state within the range (from the history)."""
    start, end = filters.start_at, min(filters.end_at, current_time())
    if end <= start:
        return []
    # Each user's state when the range opens: one index seek per user on (user_id, at), where a
    # GROUP BY over everything before the range would read years of history.
    last_before = (
        select(AgentStateChange.status)
        .where(AgentStateChange.user_id == User.id, AgentStateChange.at < start)
        .order_by(AgentStateChange.at.desc(), AgentStateChange.id.desc()).limit(1)
        .correlate(User).scalar_subquery()
    )
    opening = [(uid, status) for uid, status in db.session.execute(select(User.id, last_before)) if status]
    # In time order straight off the (at, user_id, status) index; grouped per agent here.
    changes = sorted(db.session.execute(
        select(AgentStateChange.user_id, AgentStateChange.status, AgentStateChange.at)
        .where(AgentStateChange.at >= start, AgentStateChange.at < end).order_by(AgentStateChange.at)
    ).all(), key=lambda row: row[0])
    timeline, changed = defaultdict(list), defaultdict(int)
    for user_id, status in opening:
        timeline[user_id].append((start, status))
    for user_id, status, at in changes:
        timeline[user_id].append((at, status))
        changed[user_id] += 1
    names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(list(timeline)))).all())
    report = []
    for user_id, points in timeline.items():
        seconds = defaultdict(float)
        for (at, status), nxt in zip(points, points[1:] + [(end, None)]):
            seconds[status] += max(0.0, (nxt[0] - at).total_seconds())
        report.append({"agent_id": user_id, "name": names.get(user_id, f"#{user_id}"),
                       "seconds": {k: int(v) for k, v in sorted(seconds.items())},
                       "changes": changed[user_id]})
    return sorted(report, key=lambda r: r["name"])


def _contacts_by_month_and_category(filters: ReportFilters, boundaries) -> list[tuple]:
    """Return (month, category, inbound contacts), from the rollup unless a queue is asked for."""
    if filters.queue:
        bucket = bucket_expression(Contact.occurred_at, boundaries).label("bucket")
        return db.session.execute(
            select(bucket, Contact.category, func.count()).where(*contact_conditions(filters))
            .group_by(bucket, Contact.category)).all()
    totals = ContactDailyTotal
    conditions = _totals_conditions(filters)
    months = defaultdict(int)
    for day, category, count in db.session.execute(
        select(totals.day, totals.category, func.sum(totals.contacts)).where(*conditions)
        .group_by(totals.day, totals.category)
    ):
        months[(day.strftime("%Y-%m"), category or None)] += int(count or 0)
    return [(month, category, n) for (month, category), n in months.items()]


def open_data(filters: ReportFilters, threshold: int = SUPPRESS_BELOW) -> list[dict]:
    """Return contacts and cases by category and month, with counts under `threshold` withheld.

    Anonymised by construction: only counts leave, by category and month. A count from 1 to
    threshold-1 is suppressed (None) so that a rare category in a small place cannot point to a
    resident; zero is published (it identifies no one). No totals are published, so a suppressed
    cell cannot be worked back from a total.
    """
    boundaries = bucket_boundaries(filters, "month")
    names = dict(db.session.execute(select(Category.code, Category.name)).all())
    cells = defaultdict(lambda: {"contacts": 0, "cases": 0})
    for label, category, count in _contacts_by_month_and_category(filters, boundaries):
        cells[(label, category or "uncategorised")]["contacts"] += count
    case_bucket = bucket_expression(Case.created_at, boundaries).label("bucket")
    case_filter = [Case.created_at >= filters.start_at, Case.created_at < filters.end_at,
                   Case.merged_into_id.is_(None)]
    if filters.service:
        case_filter.append(Case.service_id == select(Service.id).where(Service.code == filters.service).scalar_subquery())
    for label, category, count in db.session.execute(
        select(case_bucket, Case.category, func.count()).where(*case_filter).group_by(case_bucket, Case.category)
    ):
        cells[(label, category)]["cases"] += count

    def publish(n: int):
        return None if 0 < n < threshold else n

    return [
        {"month": month, "category": category, "category_name": names.get(category, category.replace("_", " ")),
         "contacts": publish(v["contacts"]), "cases": publish(v["cases"])}
        for (month, category), v in sorted(cells.items())
    ]
