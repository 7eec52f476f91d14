"""Benchmark public web-form submissions per second through the real HTTP stack.

Migrates a fresh database, adds one service and a pothole form, starts the real server
(`python wsgi.py`: eventlet, one process) on a free loopback port, and drives it with
concurrent HTTP clients. Each client loads the form once (session cookie + CSRF token), then
posts whole submissions; each accepted post is a resolved customer, a web_form contact and a
routed case with its events, answered 303 to the confirmation page. The rate limiter stays on
(PORTAL_SUBMIT_LIMIT raised so it does not refuse), so its cost is in the figures. Residents
give a phone number only, so no confirmation email is queued.

Prints a table on stdout (one row per scenario: submissions/s, latency p50/p95/p99); progress
goes to stderr. Bounded: a fixed number of posts per scenario, and a time limit.

    .venv/bin/python bench/forms.py
    .venv/bin/python bench/forms.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/crm_forms

A PostgreSQL database given is wiped first (its public schema is dropped): never point it at one that matters.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FORM = {"location": "Outside 12 Main Street", "size": "Larger than a dinner plate", "hazards": "A bus stop",
        "noticed-day": "3", "noticed-month": "11", "noticed-year": "2026",
        "details": "Deep enough to damage a tyre", "name": "Bench Resident"}
FIELDS = [
    {"name": "location", "label": "Where is the pothole?", "type": "text", "required": True, "location": True},
    {"name": "size", "label": "How big is it?", "type": "radios", "required": True,
     "options": ["Smaller than a dinner plate", "Larger than a dinner plate"]},
    {"name": "hazards", "label": "Is it near any of these?", "type": "checkboxes", "options": ["A school", "A bus stop"]},
    {"name": "noticed", "label": "When did you notice it?", "type": "date"},
    {"name": "details", "label": "Anything else?", "type": "textarea"},
    {"name": "photo", "label": "Add a photo", "type": "file"},
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare_database(url: str) -> None:
    """Migrate from empty and add the service, category, routing rule and form."""
    env = dict(os.environ, DATABASE_URL=url, CRM_NO_MONKEY_PATCH="1")
    if url.startswith("postgresql"):
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    os.environ["CRM_NO_MONKEY_PATCH"] = "1"
    from crm import create_app
    from crm.extensions import db
    from crm.models import Category, FormDefinition, Queue, RoutingRule, Service

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        service = Service(code="highways", name="Highways", sla_hours=40)
        db.session.add(service)
        db.session.flush()
        queue = Queue(code="highways_cases", name="Highways cases", channel="cases", service_id=service.id)
        db.session.add(queue)
        db.session.flush()
        db.session.add(Category(service_id=service.id, code="pothole", name="Pothole"))
        db.session.add(RoutingRule(category_code="pothole", service_id=service.id, queue_id=queue.id, sla_hours=40))
        db.session.add(FormDefinition(slug="report-a-pothole", title="Report a pothole", service_id=service.id,
                                      category_code="pothole", fields=FIELDS))
        db.session.commit()
        db.engine.dispose()


def start_server(url: str, port: int, instance: str) -> subprocess.Popen:
    """Start `python wsgi.py` and wait until it answers."""
    env = dict(os.environ, DATABASE_URL=url, HOST="127.0.0.1", PORT=str(port), PORTAL_SUBMIT_LIMIT="1000000 per minute",
               RATELIMIT_STORAGE_URI="memory://", SECRET_KEY="bench-secret", LOG_LEVEL="WARNING")
    env.pop("CRM_NO_MONKEY_PATCH", None)
    env.pop("REDIS_URL", None)
    server = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(instance, "server.log"), "w"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/forms/", timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start; see server.log")


def small_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (640, 480), (120, 90, 60)).save(out, "JPEG", quality=85)
    return out.getvalue()


def run_scenario(base: str, clients: int, posts: int, photo: bytes | None, time_limit: float) -> dict:
    """Have `clients` sessions post `posts` submissions in all; return throughput and latencies."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    remaining = [posts]
    deadline = time.monotonic() + time_limit

    def worker(n: int) -> None:
        session = requests.Session()
        page = session.get(f"{base}/forms/report-a-pothole", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        count = 0
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            count += 1
            data = dict(FORM, csrf_token=token, phone=f"077009{n:02d}{count:03d}"[:11])
            files = {"photo": ("pothole.jpg", photo, "image/jpeg")} if photo else {"photo": ("", b"", "")}
            started = time.perf_counter()
            response = session.post(f"{base}/forms/report-a-pothole", data=data, files=files,
                                    allow_redirects=False, timeout=60)
            elapsed = time.perf_counter() - started
            with lock:
                if response.status_code == 303 and "/confirmation" in response.headers.get("Location", ""):
                    latencies.append(elapsed)
                else:
                    failures.append(f"{response.status_code}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {"ok": len(latencies), "failed": len(failures), "wall": wall, "per_second": len(latencies) / wall,
            "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "mean": statistics.fmean(latencies) * 1000
            if latencies else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary folder")
    parser.add_argument("--posts", type=int, default=600, help="submissions per scenario")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per scenario at most")
    args = parser.parse_args()
    instance = tempfile.mkdtemp(prefix="crm-bench-forms-")
    url = args.database_url or f"sqlite:///{instance}/forms.sqlite3"
    log(f"preparing {url.split('@')[-1]}")
    prepare_database(url)
    port = free_port()
    server = start_server(url, port, instance)
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        photo = small_jpeg()
        # Warm up: imports, template compilation, connection pool.
        run_scenario(base, 2, 20, None, 30)
        for clients in args.clients:
            for label, attachment in (("answers only", None), (f"with a {len(photo) // 1024} KB photo", photo)):
                log(f"{clients} client(s), {label}: {args.posts} posts")
                result = run_scenario(base, clients, args.posts, attachment, args.time_limit)
                rows.append((clients, label, result))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"Web-form submissions through HTTP (python wsgi.py, eventlet, 1 process, {backend})")
    print(f"{'clients':>7}  {'submission':<22} {'ok':>5} {'failed':>6} {'per s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    for clients, label, r in rows:
        print(f"{clients:>7}  {label:<22} {r['ok']:>5} {r['failed']:>6} {r['per_second']:>7.1f} "
              f"{r['p50']:>7.1f} {r['p95']:>7.1f} {r['p99']:>7.1f}")


if __name__ == "__main__":
    main()
