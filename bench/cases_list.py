"""Benchmark a service's case work list with 100,000 open cases, on SQLite and PostgreSQL.

Builds (or reuses) a database through the migrations with one big service (Highways: 100,000
open cases, plus resolved and closed ones) beside other services' cases, then times the real
read path, `crm.cases.queries.work_list` (what /cases and GET /api/v1/cases run), one "request"
per call (the session removed between calls), for each filter the officers use. Prints p50/p95
per filter on stdout with the query plan of the default list; progress on stderr.

    .venv/bin/python bench/cases_list.py                     # both backends
    .venv/bin/python bench/cases_list.py --backend sqlite --samples 100
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from bench.datagen import log, quiet_warnings, with_search_path  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench"
PG_SCHEMA = "bench_cases"
SQLITE_PATH = ROOT / "bench" / "data" / "cases-100k.sqlite3"
TARGET_P95_MS = 100.0
BIG_SERVICE_OPEN = 100_000
BIG_SERVICE_DONE = 50_000
OTHER_SERVICES_CASES = 60_000
CUSTOMERS = 5_000
OFFICERS = 20
BATCH = 10_000
OPEN_WEIGHTS = {"new": 15, "open": 25, "in_progress": 45, "awaiting_customer": 15}


def build(url: str, seed: int = 2026) -> dict:
    """Create the schema by migration and fill it, unless a finished build is already there."""
    from flask_migrate import upgrade

    from crm import create_app
    from crm.cases.service import reference_for
    from crm.extensions import db
    from crm.models import Case, Category, Customer, Queue, Service, User

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "JOBS_IMMEDIATE": True})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        highways = db.session.scalar(select(Service).where(Service.code == "highways"))
        if highways is not None:
            count = db.session.scalar(select(func.count(Case.id)).where(
                Case.service_id == highways.id, Case.status.in_(tuple(OPEN_WEIGHTS))))
            if count == BIG_SERVICE_OPEN:
                log(f"reusing {url.split('?')[0]} ({count:,} open Highways cases)")
                return {"service_id": highways.id, "officer_ids": db.session.scalars(
                    select(User.id).where(User.service_id == highways.id)).all()}
            raise SystemExit(f"{url} holds another data set; drop it first")
        rng = random.Random(seed)
        started = time.perf_counter()
        services = []
        for code, name in (("highways", "Highways"), ("waste", "Waste"), ("libraries", "Libraries")):
            service = Service(code=code, name=name, sla_hours=40)
            db.session.add(service)
            db.session.flush()
            db.session.add(Category(service_id=service.id, code=f"{code}_issue", name=f"{name} issue"))
            db.session.add(Queue(code=f"{code}_cases", name=f"{name} cases", channel="cases", service_id=service.id))
            services.append(service)
        db.session.flush()
        for n in range(OFFICERS):
            db.session.add(User(email=f"officer{n}@bench.example", name=f"Officer {n}", role="service_officer",
                                service_id=services[0].id))
        db.session.commit()
        officer_ids = db.session.scalars(select(User.id).where(User.service_id == services[0].id)).all()
        now = datetime.now(timezone.utc)
        conn = db.session.connection()
        conn.execute(insert(Customer), [{"name": f"Resident {n}", "created_at": now, "updated_at": now}
                                        for n in range(CUSTOMERS)])
        customer_ids = db.session.scalars(select(Customer.id)).all()
        plan = ([(services[0], "open")] * BIG_SERVICE_OPEN + [(services[0], "done")] * BIG_SERVICE_DONE
                + [(rng.choice(services[1:]), rng.choice(["open", "done"])) for _ in range(OTHER_SERVICES_CASES)])
        rng.shuffle(plan)
        statuses, weights = list(OPEN_WEIGHTS), list(OPEN_WEIGHTS.values())
        rows = []
        for n, (service, state) in enumerate(plan, start=1):
            created = now - timedelta(minutes=rng.randint(0, 200 * 24 * 60))
            status = rng.choices(statuses, weights)[0] if state == "open" else rng.choice(["resolved", "closed"])
            due = created + timedelta(hours=rng.randint(8, 400))
            rows.append({
                "id": n, "reference": reference_for(n), "customer_id": rng.choice(customer_ids),
                "service_id": service.id, "category": f"{service.code}_issue", "title": f"Case {n}",
                "description": "", "status": status, "priority": "normal", "source_channel": "phone",
                "assignee_id": rng.choice(officer_ids) if rng.random() < 0.6 else None,
                "sla_due_at": due, "first_response_due_at": created + timedelta(hours=8), "sla_hours": 40,
                "sla_breached": due < now and state == "open", "sla_at_risk": False,
                "first_response_breached": False, "created_at": created, "updated_at": created,
                "resolved_at": created + timedelta(days=2) if state == "done" else None,
            })
            if len(rows) == BATCH:
                conn.execute(insert(Case), rows)
                rows = []
                print(f"\rcases {n:,}/{len(plan):,}", end="", file=sys.stderr, flush=True)
        if rows:
            conn.execute(insert(Case), rows)
        print(file=sys.stderr)
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))"))
        db.session.commit()
        conn = db.session.connection()
        conn.execute(text("ANALYZE"))
        db.session.commit()
        log(f"built {len(plan):,} cases in {time.perf_counter() - started:.0f}s")
        return {"service_id": services[0].id, "officer_ids": officer_ids}


def measure(url: str, samples: int, seed: int = 7) -> tuple[list, str]:
    """Time work_list for each officer filter; return rows (filter, p50, p95, max, rows) and a plan."""
    from crm import create_app
    from crm.cases.queries import work_list
    from crm.extensions import db

    info = build(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    rng = random.Random(seed)
    variants = {
        "all open, page 1": lambda: dict(),
        "all open, page 20": lambda: dict(page=20),
        "status=in_progress": lambda: dict(status="in_progress"),
        "status=awaiting_customer, page 5": lambda: dict(status="awaiting_customer", page=5),
        "SLA at risk": lambda: dict(at_risk=True),
        "assigned to me": lambda: dict(assignee_id=rng.choice(info["officer_ids"])),
        "assigned to me, in progress": lambda: dict(assignee_id=rng.choice(info["officer_ids"]),
                                                    status="in_progress"),
        "unassigned": lambda: dict(unassigned=True),
        "closed": lambda: dict(status="closed"),
    }
    results = []
    with app.app_context():
        for name, make_args in variants.items():
            timings, count = [], 0
            for _ in range(3):  # warm the caches as a running server would be
                work_list(info["service_id"], **make_args())
                db.session.remove()
            for _ in range(samples):
                args = make_args()
                started = time.perf_counter()
                items, _ = work_list(info["service_id"], **args)
                count = len([c.reference for c in items])  # rows materialised, as a page renders them
                timings.append((time.perf_counter() - started) * 1000)
                db.session.remove()
            timings.sort()
            p95 = timings[max(0, int(round(0.95 * len(timings))) - 1)]
            results.append((name, statistics.median(timings), p95, timings[-1], count))
            log(f"  {name}: p50 {results[-1][1]:.1f} ms, p95 {p95:.1f} ms")
        plan = explain(db, info["service_id"])
        db.engine.dispose()
    return results, plan


def explain(db, service_id: int) -> str:
    """Return the plan of the default list (all open work, most urgent first)."""
    from crm.cases.lifecycle import OPEN_STATUSES

    statuses = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
    sql = (f"SELECT id FROM cases WHERE merged_into_id IS NULL AND service_id = {int(service_id)} "
           f"AND status IN ({statuses}) ORDER BY sla_due_at, id LIMIT 51")
    if db.engine.dialect.name == "postgresql":
        rows = db.session.execute(text("EXPLAIN ANALYZE " + sql)).scalars().all()
    else:
        rows = [" ".join(str(c) for c in r[1:]) for r in db.session.execute(text("EXPLAIN QUERY PLAN " + sql))]
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args(argv)
    quiet_warnings()
    targets = []
    if args.backend in ("sqlite", "both"):
        SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        targets.append(("SQLite", f"sqlite:///{SQLITE_PATH}"))
    if args.backend in ("postgresql", "both"):
        engine = create_engine(args.pg_url)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{PG_SCHEMA}"'))
        engine.dispose()
        targets.append(("PostgreSQL", with_search_path(args.pg_url, PG_SCHEMA)))
    failed = False
    print(f"Case work list, one service with {BIG_SERVICE_OPEN:,} open cases "
          f"({BIG_SERVICE_OPEN + BIG_SERVICE_DONE + OTHER_SERVICES_CASES:,} cases in all), "
          f"{args.samples} samples per filter, page of 50\n")
    for label, url in targets:
        log(f"{label}:")
        results, plan = measure(url, args.samples)
        print(f"### {label}\n")
        print("| filter | p50 ms | p95 ms | max ms | rows |")
        print("|---|---:|---:|---:|---:|")
        for name, p50, p95, worst, count in results:
            print(f"| {name} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {count} |")
            failed |= p95 >= TARGET_P95_MS
        print(f"\nPlan of the default list:\n\n```\n{plan}\n```\n")
    print(f"p95 target {TARGET_P95_MS:.0f} ms: {'MISSED' if failed else 'met'} on every filter")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
