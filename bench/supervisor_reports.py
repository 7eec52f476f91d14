"""Benchmark the supervisor reports over 2,000,000 contacts on SQLite and PostgreSQL.

Data comes from bench/datagen.py (200k customers, 2M contacts over three years, 8% raising a
case); this script adds a presence history for the bench agents (agent_state_changes) the first
time, then times each report for random calendar months: p50/p95/max over --runs months.
Progress goes to stderr; the figures are printed as a Markdown table on stdout.

    .venv/bin/python bench/supervisor_reports.py --backend sqlite
    .venv/bin/python bench/supervisor_reports.py --backend postgresql \\
        --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/crm_supervisor
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.datagen import build, log, quiet_warnings, with_search_path  # noqa: E402

STATES = ("available", "busy", "away", "available", "busy", "offline")


def add_presence_history(url: str, start: datetime, end: datetime, seed: int = 7) -> None:
    """Give every bench agent a working day of presence changes for each day of the history."""
    from sqlalchemy import create_engine, func, select

    from crm.models import AgentStateChange, User

    engine = create_engine(url)
    table = AgentStateChange.__table__
    with engine.begin() as conn:
        if conn.scalar(select(func.count()).select_from(table)):
            engine.dispose()
            return
        agents = list(conn.scalars(select(User.id).where(User.role == "agent")))
    rng = random.Random(seed)
    days = (end - start).days
    log(f"adding presence history: {len(agents)} agents x {days} days")
    batch, written = [], 0
    with engine.begin() as conn:
        for day in range(days):
            base = start + timedelta(days=day)
            if base.weekday() >= 5:
                continue
            for agent in agents:
                at = base.replace(hour=8) + timedelta(minutes=rng.randint(0, 90))
                for status in STATES:
                    batch.append({"user_id": agent, "status": status, "at": at})
                    at += timedelta(minutes=rng.randint(20, 150))
            if len(batch) >= 20_000:
                conn.execute(table.insert(), batch)
                written += len(batch)
                batch = []
                print(f"\r  presence history {day + 1}/{days} days, {written:,} rows", end="", file=sys.stderr)
        if batch:
            conn.execute(table.insert(), batch)
            written += len(batch)
    print(f"\r  presence history: {written:,} rows{' ' * 20}", file=sys.stderr)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            from sqlalchemy import text

            conn.execute(text("ANALYZE agent_state_changes"))
    engine.dispose()


def fill_daily_totals(url: str) -> None:
    """Build the reports' daily rollup: datagen's bulk inserts bypass the ORM hook that keeps it."""
    from sqlalchemy import func, select

    from crm import create_app
    from crm.extensions import db
    from crm.models import ContactDailyTotal
    from crm.supervisor.rollup import rebuild_totals

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SUPERVISOR_PUSH": False})
    with app.app_context():
        # datagen reuses a database whose own tables match; a table added since is made here.
        ContactDailyTotal.__table__.create(db.engine, checkfirst=True)
        from crm.models import AgentStateChange

        for index in AgentStateChange.__table__.indexes:
            index.create(db.engine, checkfirst=True)
        if not db.session.scalar(select(func.count()).select_from(ContactDailyTotal)):
            started = time.perf_counter()
            cells = rebuild_totals(progress=lambda month, n: print(
                f"\r  daily totals {month:%Y-%m}: {n:,} cells", end="", file=sys.stderr))
            db.session.commit()
            print(f"\r  daily totals: {cells:,} cells in {time.perf_counter() - started:.0f}s{' ' * 20}",
                  file=sys.stderr)
        db.engine.dispose()


def months_in(start: datetime, end: datetime) -> list[date]:
    """Return the first day of every whole month in the period."""
    month = (start.date().replace(day=1) + timedelta(days=32)).replace(day=1)
    months = []
    while (month + timedelta(days=32)).replace(day=1) <= end.date():
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def time_reports(url: str, period_end: datetime, months: list[date], runs: int, seed: int) -> dict:
    """Time each report (and the whole reports page) for `runs` random months; return ms lists."""
    from crm import create_app
    from crm.extensions import db
    from crm.supervisor import reports, tables

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "CRM_FIXED_NOW": period_end, "SUPERVISOR_PUSH": False})
    rng = random.Random(seed)
    chosen = [rng.choice(months) for _ in range(runs)]
    timings: dict[str, list[float]] = {}
    checks = {}

    def month_filters(first: date, **kw):
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        return reports.ReportFilters(first, last, **kw)

    work = {
        "contacts (GET /reports/contacts)": lambda f: reports.contacts_report(f),
        "contacts, channel=phone": lambda f: reports.contacts_report(
            reports.ReportFilters(f.start, f.end, channel="phone")),
        "contacts, service=highways": lambda f: reports.contacts_report(
            reports.ReportFilters(f.start, f.end, service="highways")),
        "channel shift": lambda f: reports.channel_shift(f),
        "SLA per service": lambda f: reports.sla_report(f),
        "failure demand": lambda f: reports.failure_demand(f),
        "agent states": lambda f: reports.agent_states(f),
        "open data": lambda f: reports.open_data(f),
        "whole reports page (every table)": lambda f: tables.report_page_data(f),
    }
    with app.app_context():
        # One untimed pass warms the caches, as a report page in use would find them.
        for fn in work.values():
            fn(month_filters(chosen[0]))
        for n, first in enumerate(chosen, start=1):
            filters = month_filters(first)
            for name, fn in work.items():
                started = time.perf_counter()
                result = fn(filters)
                timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)
                if name.startswith("contacts (GET"):
                    checks.setdefault("contacts per month", []).append(result["total"])
            print(f"\r  {n}/{runs} months timed", end="", file=sys.stderr)
            db.session.remove()
        print(file=sys.stderr)
        db.engine.dispose()
    return {"timings": timings, "contacts_per_month": statistics.mean(checks["contacts per month"])}


def main(argv=None) -> int:
    quiet_warnings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], required=True)
    parser.add_argument("--sqlite-path", default=str(ROOT / "bench" / "data" / "supervisor-200000-2000000.sqlite3"))
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/crm_supervisor")
    parser.add_argument("--pg-schema", default="bench_supervisor_2m")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--contacts", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)

    if args.backend == "sqlite":
        Path(args.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        base, schema = f"sqlite:///{args.sqlite_path}", None
    else:
        base, schema = args.pg_url, args.pg_schema
    info = build(base, customers=args.customers, contacts=args.contacts, schema=schema)
    url = with_search_path(info.url, schema)
    start, end = datetime.fromisoformat(info.period_start), datetime.fromisoformat(info.period_end)
    add_presence_history(url, start, end)
    fill_daily_totals(url)
    result = time_reports(url, end, months_in(start, end), args.runs, args.seed)
    print(f"\n{args.backend}: {info.contacts:,} contacts, {info.cases:,} cases; "
          f"{result['contacts_per_month']:,.0f} contacts in an average month; {args.runs} random months\n")
    print("| report (one calendar month) | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|")
    for name, values in result["timings"].items():
        print(f"| {name} | {statistics.median(values):.0f} | {percentile(values, 95):.0f} | {max(values):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
