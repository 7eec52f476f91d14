"""Webchat load: 500 residents and 50 agents relaying 20 messages each, against the real stack
and, in the same run, against a bare Flask-SocketIO relay (bench/chat_echo_server.py).

python bench/chat_load.py [--residents 500] [--agents 50] [--messages 20] [--interval 2] [--settle 5]
                          [--database-url URL] [--redis-url URL --processes 2]
Each resident sends a message every --interval seconds (open loop); each agent answers every
message at once. Residents arrive spread over the first interval and each sends its first
message --settle seconds after its planned arrival (or once its chat is assigned, if later), so
both servers get the same load shape whenever they assign. Figures on stdout (last line JSON);
progress on stderr. Latencies are measured in this one process, so one-way resident -> agent
and agent -> resident times share a clock. Lost = acknowledged to the sender but not in the
database afterwards; not_delivered_live = acknowledged but never pushed to the other side while
it was connected (these clients do not reconnect; a real one gets such messages back on resume).
"""
import argparse
import json
import os
import socket as _socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_database(database_url, agents):
    """Create the schema and the agents (run without eventlet); return their tokens."""
    code = f"""
import json, os
os.environ["CRM_NO_MONKEY_PATCH"] = "1"
from sqlalchemy import text
from crm import create_app
from crm.extensions import db
from crm.auth.accounts import create_user, create_token
app = create_app({{"SQLALCHEMY_DATABASE_URI": {database_url!r}}})
with app.app_context():
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE")); conn.execute(text("CREATE SCHEMA public"))
    else:
        db.drop_all()
    db.create_all()
    tokens = []
    for n in range({agents}):
        user = create_user(f"bench-agent{{n}}@bench.example", f"Bench Agent {{n}}", "agent", None)
        user.chat_capacity = 10
        tokens.append(create_token(user))
    db.session.commit()
print(json.dumps(tokens))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def stored_message_ids(database_url):
    """Return the ids of every message in the database (read without eventlet)."""
    code = f"""
from sqlalchemy import create_engine, text
engine = create_engine({database_url!r})
with engine.connect() as conn:
    print(",".join(str(i) for (i,) in conn.execute(text("select id from messages"))))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return {int(i) for i in out.stdout.strip().split(",") if i}


def free_port():
    with _socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LOG_DIR = Path(tempfile.mkdtemp(prefix="chat-bench-logs-"))


def start_process(args, env, port):
    """Start one server; its stderr is kept in LOG_DIR so failures can be diagnosed afterwards."""
    log_path = LOG_DIR / f"{Path(args[1]).stem}-{port}.log"
    log = open(log_path, "w+b")
    print(f"server log: {log_path}", file=sys.stderr)
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    import requests

    for _ in range(300):
        try:
            requests.get(f"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling", timeout=1)
            return proc
        except requests.RequestException:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(log.read().decode()[-2000:])
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def stack_servers(database_url, redis_url, processes):
    ports = [free_port() for _ in range(processes)]
    env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY="bench", WEBCHAT_MAX_OPEN_PER_IP="100000",
               WEBCHAT_IP_RATE="1000000", WEBCHAT_IP_BURST="1000000", WEBCHAT_CONNECTION_RATE="1000",
               WEBCHAT_CONNECTION_BURST="1000", WEBCHAT_SWEEP_SECONDS="1")
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    procs = [start_process([sys.executable, "wsgi.py"], dict(env, PORT=str(p)), p) for p in ports]
    return procs, [f"http://127.0.0.1:{p}" for p in ports]


def echo_servers(redis_url, processes):
    ports = [free_port() for _ in range(processes)]
    extra = [redis_url] if redis_url else []
    procs = [start_process([sys.executable, "bench/chat_echo_server.py", str(p), *extra], dict(os.environ), p)
             for p in ports]
    return procs, [f"http://127.0.0.1:{p}" for p in ports]


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def run_load(urls, tokens, residents, messages, interval, label, burst=False, settle=0.0):
    """Connect agents (on the last URL) and residents (on the first), relay, and measure.

    With `burst`, every resident connects first and then all send `start` at once. With `settle`,
    a resident's first message goes that long after its planned arrival, not when its chat is assigned.
    """
    import eventlet
    import socketio

    agent_url, resident_url = urls[-1], urls[0]
    to_agent, back, round_trip = [], [], []
    # The same, without each resident's first message (sent during the burst of 500 starts).
    later_to_agent, later_round_trip = [], []
    seen_by_agent, seen_by_resident = {}, {}
    replies = {}
    agent_clients = []
    assigned = {}

    def make_agent(n, token):
        sio = socketio.Client(reconnection=False)

        @sio.on("assigned", namespace="/agent")
        def on_assigned(data):
            assigned[data["conversation_id"]] = n

        @sio.on("message", namespace="/agent")
        def on_message(data):
            if data.get("author") != "resident":
                return
            now = time.perf_counter()
            seen_by_agent[data["id"]] = seen_by_agent.get(data["id"], 0) + 1
            if seen_by_agent[data["id"]] > 1:
                return
            resident_n, k, sent = data["body"].split(":")
            to_agent.append(now - float(sent))
            if k != "0":
                later_to_agent.append(now - float(sent))
            body = f"{resident_n}:{k}:{sent}:{time.perf_counter()}"
            ack = sio.call("message", {"conversation_id": data["conversation_id"], "client_id": f"a{data['id']}",
                                       "body": body}, namespace="/agent", timeout=30)
            if "error" not in ack:
                replies[ack["id"]] = True

        sio.connect(agent_url, namespaces=["/agent"], auth={"token": token, "agent": n}, transports=["websocket"],
                    wait_timeout=60)
        agent_clients.append(sio)

    pool = eventlet.GreenPool(1000)
    for n, token in enumerate(tokens):
        pool.spawn(make_agent, n, token)
    pool.waitall()
    print(f"[{label}] {len(agent_clients)} agents connected", file=sys.stderr)

    results = {"errors": 0}
    acked_by_resident, acked_by_agent = set(), set()
    resident_clients = []
    start_acks = []
    all_connected = eventlet.event.Event()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()

    def resident(n):
        sio = socketio.Client(reconnection=False)

        @sio.on("message", namespace="/webchat")
        def on_message(data):
            if data.get("author") != "agent":
                return
            now = time.perf_counter()
            seen_by_resident[data["id"]] = seen_by_resident.get(data["id"], 0) + 1
            if seen_by_resident[data["id"]] > 1:
                return
            _, k, sent, replied = data["body"].split(":")
            back.append(now - float(replied))
            round_trip.append(now - float(sent))
            if k != "0":
                later_round_trip.append(now - float(sent))

        planned = started + interval * n / residents
        if not burst:
            # Arrivals spread over the first interval, as residents open the page one by one.
            eventlet.sleep(interval * n / residents)
        sio.connect(resident_url, namespaces=["/webchat"], transports=["websocket"], wait_timeout=60)
        resident_clients.append(sio)
        if burst:
            if len(resident_clients) == residents:
                all_connected.send(True)
            all_connected.wait()
        asked = time.perf_counter()
        ack = sio.call("start", {"name": f"Bench Resident {n}", "agent": n % len(tokens)}, namespace="/webchat",
                       timeout=60)
        start_acks.append(time.perf_counter() - asked)
        if "error" in ack:
            results["errors"] += 1
            print(f"start refused: {ack['error']}", file=sys.stderr)
            return
        chat = ack["conversation_id"]
        for _ in range(600):
            if chat in assigned:
                break
            eventlet.sleep(0.05)
        # Anchored to the arrival, not to the assignment: a server that assigns in batches would
        # otherwise set every resident's clock at once, and they would all write at the same moment.
        first = max(time.perf_counter(), planned + settle) if settle and not burst else time.perf_counter()
        for k in range(messages):
            # Open loop: a resident types at its own pace, whatever the server's speed.
            eventlet.sleep(max(0.0, first + k * interval - time.perf_counter()))
            body = f"{n}:{k}:{time.perf_counter()}"
            ack = sio.call("message", {"client_id": f"r{n}-{k}", "body": body, "conversation_id": chat,
                                       "agent": n % len(tokens)}, namespace="/webchat", timeout=30)
            if "error" in ack:
                results["errors"] += 1
            else:
                acked_by_resident.add(ack["id"])

    for n in range(residents):
        pool.spawn(resident, n)
    pool.waitall()
    # Let the last replies land: wait until nothing has arrived for five seconds.
    while True:
        before = len(to_agent) + len(back)
        eventlet.sleep(5)
        if len(to_agent) + len(back) == before:
            break
    elapsed = time.perf_counter() - started
    for sio in agent_clients + resident_clients:
        sio.disconnect()
    acked_by_agent.update(replies)
    duplicated = sum(c - 1 for c in seen_by_agent.values()) + sum(c - 1 for c in seen_by_resident.values())
    figures = {
        "label": label, "resident_messages_acked": len(acked_by_resident), "agent_replies_acked": len(acked_by_agent),
        "errors": results["errors"],
        # Acknowledged but not seen live by the other side (a real client would get it on resume).
        "not_delivered_live": len(acked_by_resident - set(seen_by_agent)) + len(acked_by_agent - set(seen_by_resident)),
        "duplicated": duplicated,
        "resident_to_agent_ms": {"p50": percentile(to_agent, .5), "p99": percentile(to_agent, .99)},
        "agent_to_resident_ms": {"p50": percentile(back, .5), "p99": percentile(back, .99)},
        "round_trip_ms": {"p50": percentile(round_trip, .5), "p99": percentile(round_trip, .99)},
        "after_first_message": {
            "resident_to_agent_ms": {"p50": percentile(later_to_agent, .5), "p99": percentile(later_to_agent, .99)},
            "round_trip_ms": {"p50": percentile(later_round_trip, .5), "p99": percentile(later_round_trip, .99)}},
        "start_ack_ms": {"p50": percentile(start_acks, .5), "p99": percentile(start_acks, .99)},
        "relayed_per_second": round((len(to_agent) + len(back)) / elapsed, 1), "seconds": round(elapsed, 1),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    figures["_acked_ids"] = acked_by_resident | acked_by_agent
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=500)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between a resident's messages")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--burst", action="store_true", help="all residents connect, then all start at once")
    parser.add_argument("--rounds", type=int, default=1, help="stack and bare echo, alternating, this many times")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds from a resident's planned arrival to its first message (0: when assigned)")
    args = parser.parse_args()
    if args.processes > 1 and not args.redis_url:
        parser.error("several processes need --redis-url")
    database_url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='chat-bench-')}/bench.sqlite3"
    print(f"setting up {args.agents} agents on {database_url.split('@')[-1]}", file=sys.stderr)
    tokens = setup_database(database_url, args.agents)

    import eventlet

    eventlet.monkey_patch()
    report = {"residents": args.residents, "agents": args.agents, "messages_each": args.messages,
              "interval_seconds": args.interval, "burst": args.burst, "settle_seconds": args.settle,
              "processes": args.processes, "database": database_url.split(":")[0], "rounds": []}
    # Stack and bare echo alternate, round after round, so both see the same (shared) machine.
    for number in range(args.rounds):
        if number:
            tokens = setup_database(database_url, args.agents)
        one = {}
        procs, urls = stack_servers(database_url, args.redis_url, args.processes)
        try:
            one["stack"] = run_load(urls, tokens, args.residents, args.messages, args.interval, "stack", args.burst,
                                    args.settle)
        finally:
            for proc in procs:
                proc.kill()
        # Lost = acknowledged to the sender but not in the database.
        one["stack"]["lost"] = len(one["stack"].pop("_acked_ids") - stored_message_ids(database_url))
        print(f"[stack] {json.dumps(one['stack'])}", file=sys.stderr)
        procs, urls = echo_servers(args.redis_url, args.processes)
        try:
            one["bare_echo"] = run_load(urls, [str(n) for n in range(args.agents)], args.residents,
                                        args.messages, args.interval, "bare echo", args.burst, args.settle)
            one["bare_echo"].pop("_acked_ids")
            print(f"[bare echo] {json.dumps(one['bare_echo'])}", file=sys.stderr)
        finally:
            for proc in procs:
                proc.kill()
        for key in ("start_ack_ms", "resident_to_agent_ms", "round_trip_ms"):
            stack, bare = one["stack"][key], one["bare_echo"][key]
            one[f"ratio_{key}"] = {q: round(stack[q] / bare[q], 2) if stack[q] and bare[q] else None
                                   for q in ("p50", "p99")}
        report["rounds"].append(one)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
