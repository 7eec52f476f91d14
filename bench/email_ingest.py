"""Benchmark email ingestion through the CLI path (`crm ingest-email` on an mbox), SQLite and PostgreSQL.

Generates N messages (default 10,000) into one mbox: new enquiries from many senders,
replies threaded by In-Reply-To to earlier messages, auto-replies (out-of-office headers, null
return path, list mail) and some with a PDF attachment. For each backend it migrates an empty
database, seeds the demo services and queues (no customers), then runs the real command

    CRM_NO_MONKEY_PATCH=1 flask --app wsgi crm ingest-email box.mbox

as a child process, timing it and reading the child's peak RSS from wait4(). Acknowledgements
are queued on a real job queue (Redis db 1; its job keys are dropped before and after, nothing is sent). The
same messages are then parsed with bare `email.message_from_bytes(raw, policy=default)` in
this process, and the ratio of the two rates is reported. A second run with N/5 messages
shows whether memory stays flat in the number of messages.

    .venv/bin/python bench/email_ingest.py
    .venv/bin/python bench/email_ingest.py --messages 2000 --backends sqlite

`--peer` instead races django-helpdesk 2.6.1 (`../shared/peers/helpdesk/helpdesk_ingest.sh`, SQLite in
WAL mode) on the peer's own corpus, in the same run: the peer first, then `crm ingest-email` on
the same Maildir in directory order and on a copy whose delivery stamps are shuffled (file order
and delivery order both random), each on a fresh migrated SQLite file with the demo services,
start-up measured by the same command on an empty Maildir. It reports threads that came out
right (every message of a manifest thread in one conversation, in written order) beside the rate.

    .venv/bin/python bench/email_ingest.py --peer            # 2,000 messages
    .venv/bin/python bench/email_ingest.py --peer --peer-messages 2000,10000

`--orders` then threads the same 2,000 mails in other orders, each on a fresh database of each
backend: delivery stamps shuffled with three seeds (the first at batch sizes 1, 37 and 300) and
an mbox in random file order; every row should say 891 / 891 threads right.

    .venv/bin/python bench/email_ingest.py --orders --backends sqlite,postgresql

The PostgreSQL runs use schema `email_bench` of the given database (dropped and rebuilt), so
they do not touch the test schema. Prints a table on stdout; progress goes to stderr.
"""
from __future__ import annotations

import argparse
import base64
import email
import os
import random
import subprocess
import sys
import tempfile
import time
from email import policy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crm.channels.email.sources import iter_mbox  # noqa: E402  (streams the mbox the same way the CLI does)

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/crm_email"
REDIS = os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/1"  # its huey.* keys are dropped
FIRST = "Jane John Mary Peter Susan David Helen Andrew Fiona Ian Ruth Neil Emma Paul Morag Ewan".split()
LAST = "Armstrong Bell Dixon Fell Graham Hodgson Irving Nixon Relph Tyson Wharton Musgrave".split()
TOPICS = [
    ("highways@council.example", "Pothole on {street}", "There is a deep pothole outside number {n} {street}."),
    ("waste@council.example", "Missed bin on {street}", "Our bin was not emptied on {street} this week."),
    ("libraries@council.example", "Library card", "I have lost my library card; can I have a new one?"),
    ("contact@council.example", "Question about {street}", "Who looks after the verges on {street}?"),
    ("council-tax@council.example", "Council tax bill", "I think my bill for {n} {street} is wrong."),
]
STREETS = "Main Street,Church Lane,Station Road,Fell View,Lowther Street,Botchergate,Lake Road".split(",")
PDF = base64.encodebytes(b"%PDF-1.4\n" + bytes(random.Random(1).getrandbits(8) for _ in range(24_000))).decode()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def generate(count: int, seed: int = 2026):
    """Yield raw messages: ~55% new, ~25% threaded replies, ~15% automatic, ~10% with a PDF."""
    rng = random.Random(seed)
    sent = []  # (sender, message id, subject) of earlier human messages
    for n in range(count):
        roll = rng.random()
        mid = f"bench-{n}@mail.example.org"
        date = f"Tue, 24 Nov 2026 {8 + n // 3600 % 10:02d}:{n // 60 % 60:02d}:{n % 60:02d} +0000"
        if roll < 0.25 and sent:
            sender, parent, subject = rng.choice(sent[-500:])
            lines = [f"From: {sender}", "To: contact@council.example", f"Subject: Re: {subject}",
                     f"Message-ID: <{mid}>", f"In-Reply-To: <{parent}>", f"References: <{parent}>", f"Date: {date}",
                     "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "",
                     "Any news on this please?", "", f"On Mon, 23 Nov 2026, {sender} wrote:", "> earlier text"]
        elif roll < 0.40 and sent:
            sender, parent, subject = rng.choice(sent[-500:])
            kind = rng.choice([["Auto-Submitted: auto-replied"], ["X-Autoreply: yes", "Precedence: auto_reply"],
                               ["Return-Path: <>", "Auto-Submitted: auto-generated"], ["List-Id: <news.example.org>"]])
            lines = [f"From: {sender}", "To: contact@council.example", f"Subject: Automatic reply: {subject}",
                     f"Message-ID: <{mid}>", f"In-Reply-To: <{parent}>", f"Date: {date}", *kind,
                     "Content-Type: text/plain; charset=utf-8", "", "I am out of the office until Monday."]
        else:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            sender = f"{name} <{name.lower().replace(' ', '.')}{rng.randrange(3000)}@example.org>"
            to, subject, body = rng.choice(TOPICS)
            street, number = rng.choice(STREETS), rng.randrange(1, 200)
            subject, body = subject.format(street=street, n=number), body.format(street=street, n=number)
            head = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Message-ID: <{mid}>", f"Date: {date}",
                    "MIME-Version: 1.0"]
            if rng.random() < 0.18:
                lines = head + ['Content-Type: multipart/mixed; boundary="b"', "", "--b",
                                "Content-Type: text/plain; charset=utf-8", "", body, "--b",
                                'Content-Type: application/pdf; name="details.pdf"',
                                'Content-Disposition: attachment; filename="details.pdf"',
                                "Content-Transfer-Encoding: base64", "", PDF.rstrip(), "--b--"]
            else:
                lines = head + ["Content-Type: text/plain; charset=utf-8", "", body, "", "--", name]
            sent.append((sender, mid, subject))
        yield ("\n".join(lines) + "\n").encode("utf-8")


def write_mbox(path: Path, count: int) -> None:
    with open(path, "wb") as handle:
        for raw in generate(count):
            handle.write(b"From bench@example.org Tue Nov 24 10:00:00 2026\n" + raw + b"\n")


def prepare_database(url: str) -> str:
    """Migrate an empty database, seed services and queues; return the URL the CLI should use."""
    env = dict(os.environ, CRM_NO_MONKEY_PATCH="1", DATABASE_URL=url)
    if url.startswith("postgresql"):
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS email_bench CASCADE"))
            conn.execute(text("CREATE SCHEMA email_bench"))
        engine.dispose()
        url = url + ("&" if "?" in url else "?") + "options=-csearch_path%3Demail_bench"
        env["DATABASE_URL"] = url
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run(flask + ["db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    seed = ("from crm import create_app, demo\nfrom crm.extensions import db\napp = create_app()\n"
            "with app.app_context():\n    demo.seed_services()\n    db.session.commit()\n")
    subprocess.run([sys.executable, "-c", seed], env=env, cwd=ROOT, check=True, capture_output=True)
    return url


def flush_jobs() -> None:
    """Drop the acknowledgement jobs the run queued (only the job queue's keys)."""
    import redis

    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter("huey.*"):
        client.delete(key)


def run_cli(url: str, mbox: Path, batch: int = 0) -> dict:
    """Run crm ingest-email as a child (with --batch when given); return its wall time, peak RSS and final counts."""
    env = dict(os.environ, CRM_NO_MONKEY_PATCH="1", DATABASE_URL=url, REDIS_URL=REDIS)
    # As deployed, byte-code is cached (the shared work tree's Makefile turns that off): in a folder outside it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "crm-bench-pycache")
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "crm", "ingest-email", "--progress-every", "2000",
               str(mbox)] + (["--batch", str(batch)] if batch else [])
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=None)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"ingest-email failed ({child.returncode})")
    import json

    counts = json.loads(out.decode().strip().splitlines()[-1])
    return {"seconds": elapsed, "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
            "counts": counts}


def bare_parse_rate(mbox: Path) -> float:
    """Messages per second of bare email.message_from_bytes over the same mbox."""
    started = time.perf_counter()
    count = 0
    for raw in iter_mbox(str(mbox)):
        email.message_from_bytes(raw, policy=policy.default)
        count += 1
    return count / (time.perf_counter() - started)


def startup_seconds(url: str) -> float:
    """Time the same command on an empty mbox: interpreter and app start-up, not ingestion."""
    with tempfile.NamedTemporaryFile(suffix=".mbox") as empty:
        return run_cli(url, Path(empty.name))["seconds"]


PEER = ROOT.parent / "shared" / "peers" / "helpdesk"


def run_peer(count: int, root: Path) -> dict:
    """Run the peer's timed ingest (SQLite WAL); return its details line as a dict."""
    import json

    env = dict(os.environ, PEER_ROOT=str(root), PEER_SQLITE="wal")
    out = subprocess.run(["bash", str(PEER / "helpdesk_ingest.sh"), str(count)], env=env, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()
    return json.loads(out[-2])


def shuffled_maildir(source: Path, target: Path, seed: int = 14) -> None:
    """Copy a Maildir with its delivery stamps shuffled: nothing about its order says how mail was written."""
    import shutil

    for sub in ("new", "cur", "tmp"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    names = sorted(os.listdir(source / "new"))
    stamps = [name.split(".", 1)[0] for name in names]
    random.Random(seed).shuffle(stamps)
    for name, stamp in zip(names, stamps):
        shutil.copy(source / "new" / name, target / "new" / f"{stamp}.{name.split('.', 1)[1]}")


def correct_threads(url: str, manifest: dict) -> tuple:
    """Count manifest threads stored as one conversation each, in written order (and the total)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        where = {mid: (conversation, seq) for mid, conversation, seq in conn.execute(text(
            "SELECT email_message_id, conversation_id, seq FROM messages "
            "WHERE direction = 'inbound' AND email_message_id IS NOT NULL"))}
    engine.dispose()
    threads = {}
    for record in manifest["messages_detail"]:
        threads.setdefault(record["thread"], []).append(record["message_id"].strip("<>"))
    good, owners = 0, {}
    for thread, mids in threads.items():
        places = [where.get(mid) for mid in mids]
        if all(places) and len({c for c, _ in places}) == 1 and [s for _, s in places] == sorted(s for _, s in places):
            owners.setdefault(places[0][0], []).append(thread)
            good += 1
    shared = sum(len(t) - 1 for t in owners.values() if len(t) > 1)  # two threads in one conversation
    return good - shared, len(threads)


def peer_race(counts: list) -> None:
    """The peer and crm ingest-email on the same mails, in the same run."""
    import json

    load = os.getloadavg()
    print(f"load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    rows = []
    for count in counts:
        # The peer's venv is kept in PEER_ROOT between runs (its script rebuilds the database and mail).
        root = Path(os.environ.get("PEER_ROOT") or Path(tempfile.gettempdir()) / "peer-helpdesk")
        work = Path(tempfile.mkdtemp(prefix=f"email-peer-{count}-"))
        log(f"peer: django-helpdesk get_email on {count} messages (SQLite WAL)")
        peer = run_peer(count, root)
        manifest = json.loads((root / "mail" / "manifest.json").read_text())
        rows.append(("django-helpdesk 2.6.1, sorted", count, peer["seconds_whole_process"],
                     peer["seconds_startup_empty_spool"], peer["cpu_seconds_user_plus_sys"], peer["max_rss_kib"] / 1024,
                     f"{peer['result']['tickets']} tickets, {peer['result']['followups']} entries"))
        maildir = root / "mail" / "Maildir"
        shuffled = work / "shuffled"
        shuffled_maildir(maildir, shuffled)
        empty = work / "empty"
        for sub in ("new", "cur", "tmp"):
            (empty / sub).mkdir(parents=True)
        for label, box in (("crm ingest-email, directory order", maildir), ("crm ingest-email, shuffled", shuffled)):
            url = prepare_database(f"sqlite:///{work / 'crm.sqlite3'}")
            run_cli(url, empty)  # warm: byte-code cache and page cache, as the peer's installed packages are
            start = run_cli(url, empty)["seconds"]
            log(f"{label}: {count} messages")
            run = run_cli(url, box)
            good, total = correct_threads(url, manifest)
            counts_text = "/".join(str(run["counts"][k]) for k in ("ingested", "threaded", "auto_reply"))
            rows.append((label, count, run["seconds"], start, run["cpu_seconds"], run["peak_rss_mb"],
                         f"{counts_text}; {good}/{total} threads right"))
            (work / "crm.sqlite3").unlink()
            flush_jobs()
    load = os.getloadavg()
    print(f"load average at end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    # CPU seconds (user + system of the timed process) beside the wall clock: on a shared machine
    # the wall clock also counts time spent waiting for a core.
    print("| what | messages | whole process s | start-up s | net msgs/s | CPU s | peak RSS MB | outcome |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, count, whole, start, cpu, rss, outcome in rows:
        print(f"| {label} | {count:,} | {whole:.2f} | {start:.2f} | {count / max(whole - start, 1e-9):.0f} | "
              f"{cpu:.2f} | {rss:.0f} | {outcome} |")
    for count in counts:
        peer = next(r for r in rows if r[1] == count and r[0].startswith("django"))
        ours = next(r for r in rows if r[1] == count and "directory" in r[0])
        print(f"{count:,}: whole process {peer[2] / ours[2]:.1f}x the peer; start-up subtracted "
              f"{(peer[2] - peer[3]) / (ours[2] - ours[3]):.1f}x; CPU seconds {peer[4] / ours[4]:.1f}x")


def shuffled_mbox(source: Path, target: Path, seed: int = 7) -> None:
    """Write a Maildir's messages as one mbox in random file order."""
    names = sorted(os.listdir(source / "new"))
    random.Random(seed).shuffle(names)
    with open(target, "wb") as handle:
        for name in names:
            raw = (source / "new" / name).read_bytes().replace(b"\nFrom ", b"\n>From ")
            handle.write(b"From bench@example.org Tue Nov 24 10:00:00 2026\n" + raw + b"\n")


def order_variants(backends: list, database_url: str) -> None:
    """Thread the peer's 2,000 mails in other orders: shuffled stamps (three seeds, three batch sizes), an mbox."""
    import json

    root = Path(os.environ.get("PEER_ROOT") or Path(tempfile.gettempdir()) / "peer-helpdesk")
    if not (root / "mail" / "manifest.json").exists():
        raise SystemExit(f"no peer corpus in {root}: run --peer first (PEER_ROOT says where)")
    manifest = json.loads((root / "mail" / "manifest.json").read_text())
    work = Path(tempfile.mkdtemp(prefix="email-orders-"))
    variants = []
    for seed in (1, 2, 3):
        shuffled_maildir(root / "mail" / "Maildir", work / f"shuffled-{seed}", seed)
        for batch in ((1, 37, 300) if seed == 1 else (300,)):
            variants.append((f"Maildir, stamps shuffled (seed {seed})", work / f"shuffled-{seed}", batch))
    shuffled_mbox(root / "mail" / "Maildir", work / "shuffled.mbox")
    variants.append(("mbox in random order", work / "shuffled.mbox", 300))
    print("| backend | order | batch | new / threaded / automatic | threads right |")
    print("|---|---|---:|---|---|")
    for backend in backends:
        for label, box, batch in variants:
            log(f"{backend}: {label}, batch {batch}")
            url = prepare_database(f"sqlite:///{work / 'crm.sqlite3'}" if backend == "sqlite" else database_url)
            run = run_cli(url, box, batch)
            good, total = correct_threads(url, manifest)
            counts_text = " / ".join(str(run["counts"][k]) for k in ("ingested", "threaded", "auto_reply"))
            print(f"| {backend} | {label} | {batch} | {counts_text} | {good} / {total} |", flush=True)
            if backend == "sqlite":
                (work / "crm.sqlite3").unlink()
            flush_jobs()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", action="store_true", help="race django-helpdesk on its corpus instead")
    parser.add_argument("--orders", action="store_true",
                        help="thread the peer's corpus (built by --peer) in other orders and batch sizes instead")
    parser.add_argument("--peer-messages", default="2000")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--database-url", default=DEFAULT_PG, help="PostgreSQL database (schema email_bench is used)")
    args = parser.parse_args()
    if args.peer:
        peer_race([int(n) for n in args.peer_messages.split(",")])
        return
    if args.orders:
        order_variants(args.backends.split(","), args.database_url)
        return
    work = Path(tempfile.mkdtemp(prefix="email-bench-"))
    rows = []
    for backend in args.backends.split(","):
        for count in (args.messages // 5, args.messages):
            mbox = work / f"box-{count}.mbox"
            if not mbox.exists():
                log(f"generating {count} messages")
                write_mbox(mbox, count)
            url = f"sqlite:///{work / f'bench-{count}.sqlite3'}" if backend == "sqlite" else args.database_url
            if backend == "sqlite" and Path(url[10:]).exists():
                Path(url[10:]).unlink()
            log(f"{backend}: preparing the database")
            url = prepare_database(url)
            overhead = startup_seconds(url)
            flush_jobs()
            log(f"{backend}: ingesting {count} messages through crm ingest-email")
            run = run_cli(url, mbox)
            flush_jobs()
            ingest_seconds = run["seconds"] - overhead
            rate = count / ingest_seconds
            bare = bare_parse_rate(mbox)
            rows.append((backend, count, rate, run["peak_rss_mb"], bare, rate / bare, run["counts"], ingest_seconds))
            log(f"{backend} {count}: {rate:.0f} msg/s, peak RSS {run['peak_rss_mb']:.0f} MB, counts {run['counts']}")
    print(f"{'backend':<11} {'messages':>8} {'msgs/s':>8} {'peak RSS MB':>12} {'bare parse/s':>13} {'ratio':>7}  counts")
    for backend, count, rate, rss, bare, ratio, counts, seconds in rows:
        print(f"{backend:<11} {count:>8} {rate:>8.0f} {rss:>12.0f} {bare:>13.0f} {ratio:>7.3f}  {counts}")
    print(f"(msgs/s excludes process start-up, measured on an empty mbox; mbox size "
          f"{(work / f'box-{args.messages}.mbox').stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
