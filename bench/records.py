"""Benchmark the records actions at scale: subject access export, erasure and one retention run.

Builds (or reuses) a bench/datagen.py database, works on a copy (SQLite) or a schema of its own
(PostgreSQL, rebuilt next time because erasure and retention change it), and runs each action in
a fresh child process, so every figure has its own peak memory (resident size sampled every 5 ms during the action) beside the process's
size just before the action started. A typical customer's export is measured next to a customer
with ~5,000 contacts: if memory did not grow with the history the two peaks are alike.

    .venv/bin/python bench/records.py                                   # SQLite, 200k / 2M
    .venv/bin/python bench/records.py --backend postgresql --customers 20000 --contacts 200000
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench"


def _rss_mb() -> float:
    """Return this process's resident size now, in MB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(action: str, url: str, customer: int | None, out: str | None) -> dict:
    """Run one action in this process and return its figures."""
    from bench.datagen import quiet_warnings

    quiet_warnings()
    from crm import create_app
    from crm.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SUPERVISOR_PUSH": False})
    with app.app_context():
        db.session.execute(db.text("select 1"))
        before = _rss_mb()
        import threading

        peak, stop = [before], threading.Event()

        def sample():
            while not stop.wait(0.005):
                peak[0] = max(peak[0], _rss_mb())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        if action == "export":
            from crm.records.subject_access import write_subject_access

            with open(out, "wb") as handle:
                result = write_subject_access(customer, handle, None, "BENCH")
            db.session.commit()
            extra = {"items": result["items"], "zip_mb": round(os.path.getsize(out) / 2**20, 2)}
        elif action in ("erase", "erase-dry"):
            from crm.records.erasure import erase_customer

            result = erase_customer(customer, None, "benchmark", dry_run=action == "erase-dry")
            db.session.commit()
            extra = {"counts": result["counts"]}
        elif action in ("retention", "retention-dry"):
            from crm.records.retention import run_retention

            run = run_retention(None, dry_run=action == "retention-dry", on_batch=db.session.commit)
            db.session.commit()
            extra = {"counts": run.counts}
        else:
            raise SystemExit(f"unknown action {action}")
        seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
    peak = max(peak[0], _rss_mb())
    return {"action": action, "customer": customer, "seconds": round(seconds, 2), "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak, 1), **extra}


def run_child(action, url, customer=None, out=None) -> dict:
    """Run an action in a fresh interpreter and return its figures."""
    args = [sys.executable, __file__, "--child", action, "--url", url]
    if customer is not None:
        args += ["--customer", str(customer)]
    if out:
        args += ["--out", out]
    done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "CRM_NO_MONKEY_PATCH": "1"})
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{action} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--contacts", type=int, default=2_000_000)
    parser.add_argument("--pg-url", default=os.environ.get("CRM_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--customer", type=int)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.url, args.customer, args.out)))
        return 0

    from bench.datagen import build, log, with_search_path

    data = ROOT / "bench" / "data"
    data.mkdir(parents=True, exist_ok=True)
    size = f"{args.customers // 1000}k"
    if args.backend == "sqlite":
        base = data / f"records_{size}.sqlite3"
        info = build(f"sqlite:///{base}", args.customers, args.contacts)
        work = data / f"records_{size}_work.sqlite3"
        log(f"copying {base.name} to {work.name} (the actions change it)")
        shutil.copyfile(base, work)
        url = f"sqlite:///{work}"
    else:
        schema = f"bench_records_{size}"
        info = build(args.pg_url, args.customers, args.contacts, schema=schema, force=True)
        url = with_search_path(args.pg_url, schema)
    heavy = info.heavy_customer_ids[0]
    typical = args.customers // 2
    out = str(data / "records_export.zip")
    results = []
    for action, customer in (("export", typical), ("export", heavy), ("erase-dry", heavy), ("erase", heavy),
                             ("retention-dry", None), ("retention", None)):
        log(f"{action} {customer or ''}")
        results.append(run_child(action, url, customer, out if action == "export" else None))
        log(json.dumps(results[-1]))
    if args.backend == "postgresql":
        # Erasure and retention changed the data: make the next run build it afresh.
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS bench_manifest"))
        engine.dispose()
    print(f"\n{args.backend}, {args.customers:,} customers / {args.contacts:,} contacts\n")
    print("| action | customer | seconds | RSS before MB | peak RSS MB | result |")
    print("|---|---|---|---|---|---|")
    for r in results:
        shown = r.get("items") or r.get("counts") or {}
        summary = ", ".join(f"{k} {v}" for k, v in shown.items() if v)[:120]
        if "zip_mb" in r:
            summary = f"ZIP {r['zip_mb']} MB; " + summary
        print(f"| {r['action']} | {r['customer'] or ''} | {r['seconds']} | {r['rss_before_mb']} | {r['peak_rss_mb']} | {summary} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
