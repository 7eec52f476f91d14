"""Commands of the email channel: crm ingest-email PATH..., crm smtp-server."""
import json
import signal
import sys
import threading
import time

import click
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from .ingest import Arrival, receive_many
from ...cli import collect_between_batches, crm, fail
from ...extensions import db
from .reading import ReadAhead, ReadSettings
from .sources import NotAMailbox, iter_messages

COUNT_KEYS = ("ingested", "threaded", "duplicate", "auto_reply", "quarantined")


@crm.command("ingest-email")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
@click.option("--progress-every", default=1000, show_default=True, type=click.IntRange(1))
# 300: a tenth less work per message than 100 (fewer look-ups, flushes and commits; bench/README.md),
# while a batch still holds SQLite's write lock for well under a second.
@click.option("--batch", default=300, show_default=True, type=click.IntRange(1, 10000),
              help="Messages processed and committed together (the files stay the safe copy until then).")
def ingest_email_command(paths, progress_every, batch):
    """Ingest each PATH (a message file, an mbox or a Maildir); the last line is JSON counts.

    Importing the same files again is safe: what was stored already is reported duplicate.
    """
    with collect_between_batches() as collect:
        _ingest(paths, progress_every, batch, collect)


def _ingest(paths, progress_every: int, batch: int, collect) -> None:
    """Store, process and commit the messages at paths a batch at a time; echo progress and the counts.

    From the second batch on, a reader process parses each batch while the one before it is stored.
    """
    counts = dict.fromkeys(COUNT_KEYS, 0)
    seen = 0
    started = time.monotonic()
    pending = []  # read from the files, not yet handed over
    ahead = None  # (arrivals, future readings) of the batch the reader process is parsing
    reader = ReadAhead(ReadSettings.of(current_app.config))

    def ingest(arrivals, readings):
        # One batch: stored, processed and committed together (the files stay the safe copy until then).
        nonlocal seen
        for arrival, reading in zip(arrivals, readings):
            arrival.reading = reading
        for result in receive_many(arrivals, source="file", commit=False):
            counts[result.status] += 1
        db.session.commit()
        db.session.expunge_all()  # keep memory flat however long the mailbox
        collect()  # the batch's rows, now garbage, go before the next batch is read
        before, seen = seen, seen + len(arrivals)
        if seen // progress_every > before // progress_every:
            rate = seen / max(time.monotonic() - started, 1e-9)
            click.echo(f"{seen} messages ({rate:.0f}/s) {json.dumps(counts)}", err=True)

    def ingest_ahead():
        nonlocal ahead
        if ahead is not None:
            arrivals, future = ahead
            ahead = None
            ingest(arrivals, reader.readings(future, len(arrivals)))

    def hand_over():
        nonlocal ahead
        arrivals = list(pending)
        pending.clear()
        parsing = (arrivals, reader.submit(arrivals))  # the reader parses this batch...
        ingest_ahead()  # ...while the one it parsed before is stored
        ahead = parsing

    def ingest_the_rest():
        ingest_ahead()
        if pending:
            ingest(list(pending), [None] * len(pending))  # a last short batch is read here: no wait
            pending.clear()

    try:
        for path in paths:
            for raw in iter_messages(path):
                if not raw:
                    click.echo(f"skipped an empty message in {path}", err=True)
                    continue
                pending.append(Arrival(raw))
                if len(pending) >= batch:
                    hand_over()
        ingest_the_rest()
    except NotAMailbox as error:
        ingest_the_rest()  # what was read before the bad path is kept
        fail(str(error))
    except OSError as error:
        fail(f"could not read {error.filename}: {error.strerror}")
    except SQLAlchemyError as error:
        fail(f"the database refused the import after {seen} messages: {error.__class__.__name__}: {error}")
    finally:
        reader.close()
    click.echo(json.dumps(counts))


@crm.command("smtp-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=click.IntRange(1, 65535))
def smtp_server_command(host, port):
    """Run the inbound SMTP listener feeding the email channel (until interrupted)."""
    from .smtp import make_controller

    if "eventlet" in sys.modules:
        import eventlet.patcher

        if eventlet.patcher.is_monkey_patched("thread"):
            fail("run the SMTP listener without eventlet: CRM_NO_MONKEY_PATCH=1 flask --app wsgi crm smtp-server")
    controller = make_controller(current_app._get_current_object(), host, port)
    try:
        controller.start()
    except (OSError, RuntimeError) as error:
        fail(f"cannot listen on {host}:{port}: {error}")
    config = current_app.config
    click.echo(f"SMTP listener on {host}:{port}, accepting mail for "
               f"{', '.join(config['EMAIL_ACCEPTED_DOMAINS'] + config['EMAIL_ACCEPTED_ADDRESSES'])} "
               f"and services' addresses; size limit {config['EMAIL_MAX_BYTES']} bytes", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        click.echo("SMTP listener stopped", err=True)
