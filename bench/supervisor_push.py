"""Measure how soon a change reaches a supervisor's dashboard over Socket.IO.

Starts a real server (`python wsgi.py`, eventlet) on a fresh SQLite (or --url) database,
connects a python-socketio client to /supervisor, then logs calls through the API one at a time
and times each from the moment the request is sent to the moment the `stats` push showing it
arrives. Progress on stderr; a Markdown table on stdout.

    .venv/bin/python bench/supervisor_push.py --events 100
"""
from __future__ import annotations

import argparse
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(url: str) -> tuple[str, str, int]:
    """Migrate the database and make a supervisor and an agent; return their tokens and the agent id."""
    from flask_migrate import upgrade

    from crm import create_app
    from crm.auth.accounts import create_token, create_user
    from crm.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SUPERVISOR_PUSH": False})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        supervisor = create_user("bench.supervisor@council.example", "Bench Supervisor", "supervisor", None)
        agent = create_user("bench.agent@council.example", "Bench Agent", "agent", None)
        db.session.commit()
        tokens = create_token(supervisor), create_token(agent)
        db.session.commit()
        agent_id = agent.id
        db.engine.dispose()
    return tokens[0], tokens[1], agent_id


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--url", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args(argv)

    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    os.environ["CRM_NO_MONKEY_PATCH"] = "1"
    import requests
    import socketio

    url = args.url or f"sqlite:///{tempfile.mkdtemp(prefix='crm-push-')}/push.sqlite3"
    supervisor_token, agent_token, agent_id = prepare(url)
    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, PORT=str(port), HOST="127.0.0.1", SECRET_KEY="bench")
    env.pop("CRM_NO_MONKEY_PATCH", None)
    env.pop("REDIS_URL", None)
    server = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.get(base + "/login", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        pushes: queue.Queue = queue.Queue()
        client = socketio.Client(reconnection=False)
        client.on("stats", lambda data: pushes.put((time.perf_counter(), data)), namespace="/supervisor")
        client.connect(base, namespaces=["/supervisor"], auth={"token": supervisor_token}, transports=["websocket"])
        pushes.get(timeout=10)  # the snapshot sent on connect
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {agent_token}"
        to_push, after_response = [], []
        for n in range(1, args.events + 1):
            sent = time.perf_counter()
            response = http.post(base + "/api/v1/contacts", timeout=10, json={
                "channel": "phone", "caller": {"name": f"Caller {n}", "phone": f"07700 9{n:05d}"},
                "outcome": "resolved_first_time"})
            answered = time.perf_counter()
            response.raise_for_status()
            while True:
                arrived, data = pushes.get(timeout=10)
                mine = next(a for a in data["agents"] if a["id"] == agent_id)
                if mine["contacts_today"] >= n:
                    break
            to_push.append((arrived - sent) * 1000)
            after_response.append((arrived - answered) * 1000)
            print(f"\r  {n}/{args.events} changes pushed", end="", file=sys.stderr)
            time.sleep(0.25)  # a change at a time: bursts are coalesced into one push by design
        print(file=sys.stderr)
        client.disconnect()
    finally:
        server.terminate()
        server.wait(10)

    def row(name, values):
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        return f"| {name} | {statistics.median(values):.0f} | {p95:.0f} | {max(values):.0f} |"

    print(f"\n{args.events} logged calls, one at a time, SQLite, one eventlet process\n")
    print("| interval | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|")
    print(row("API request sent → `stats` push received", to_push))
    print(row("API response received → `stats` push received", after_response))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
