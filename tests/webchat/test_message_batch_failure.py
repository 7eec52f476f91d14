"""A batch of chat messages the database refuses as a whole is stored one message at a time (crm.webchat.writer):
only the message the database will not take is lost, and the rest keep their order and are acknowledged.

PostgreSQL only: a trigger installed for the test (and dropped after it) refuses one body, so the batch's
one statement fails as a whole, as a real fault in one row would make it.
"""
import os
import queue
import re
import time

import pytest
from sqlalchemy import text

from crm.extensions import db
from tests.webchat.test_chat_live import start_chat
from tests.webchat.test_message_batches import collect, fire, stored

REFUSED = "a body the database refuses"
SLOW = "a body that keeps the writer busy for a moment"
TRIGGER = "test_refuse_one_message_body"


@pytest.fixture
def refusing_database(app, database_url):
    """Install a trigger on messages that refuses REFUSED and stalls on SLOW; drop it afterwards."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the trigger is PostgreSQL's; SQLite batches run in the session's own transaction")
    with db.engine.begin() as connection:
        connection.execute(text(f"""
            CREATE OR REPLACE FUNCTION {TRIGGER}() RETURNS trigger AS $$
            BEGIN
                IF NEW.body = '{REFUSED}' THEN
                    RAISE EXCEPTION 'message body refused by the test trigger';
                END IF;
                IF NEW.body = '{SLOW}' THEN
                    PERFORM pg_sleep(1);
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql"""))
        connection.execute(text(f"DROP TRIGGER IF EXISTS {TRIGGER} ON messages"))
        connection.execute(text(f"CREATE TRIGGER {TRIGGER} BEFORE INSERT ON messages "
                                f"FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()"))
    yield
    db.session.rollback()  # the test's reads hold a lock on messages that DROP TRIGGER would wait for
    with db.engine.begin() as connection:
        connection.execute(text(f"DROP TRIGGER IF EXISTS {TRIGGER} ON messages"))
        connection.execute(text(f"DROP FUNCTION IF EXISTS {TRIGGER}()"))


@pytest.fixture
def server(refusing_database, server_factory):
    """A server whose rate limits leave room for every client here firing at once from one address."""
    return server_factory(WEBCHAT_IP_BURST="1000", WEBCHAT_IP_RATE="1000", WEBCHAT_CONNECTION_BURST="100")


def server_log(server) -> str:
    """Return what the server has logged so far (read in place: the server still writes at the file's offset)."""
    size = os.fstat(server.log.fileno()).st_size
    return os.pread(server.log.fileno(), size, 0).decode("utf-8", errors="replace")


def test_one_refused_message_fails_its_batch_but_only_it_is_lost(server, clients):
    residents = [clients(server.url, "/webchat") for _ in range(3)]
    chats = [start_chat(r, name=f"Resident {n}")["conversation_id"] for n, r in enumerate(residents)]

    answers = queue.Queue()
    # The writer stores this one alone and stalls in the trigger, so the burst below gathers into one batch.
    fire(residents[0], "message", {"client_id": "slow", "body": SLOW}, answers, "slow")
    time.sleep(0.3)
    sent = {n: [] for n in range(3)}
    for k in range(5):
        for n, resident in enumerate(residents):
            body = REFUSED if (n, k) == (1, 2) else f"resident {n} line {k}"
            sent[n].append(body)
            fire(resident, "message", {"client_id": f"{n}-{k}", "body": body}, answers, (n, k))
    acks = collect(answers, 16)

    failed_batches = [int(size) for size in re.findall(r"storing the (\d+) one by one", server_log(server))]
    assert failed_batches and max(failed_batches) > 1, "the refused message never failed a batch of several"
    assert acks[(1, 2)]["error"]["code"] == "server_error"
    assert [tag for tag, ack in acks.items() if tag != (1, 2) and "error" in ack] == []
    for n, chat in enumerate(chats):
        expected = ([SLOW] if n == 0 else []) + [body for body in sent[n] if body != REFUSED]
        assert [m.body for m in stored(chat) if m.author == "resident"] == expected
        seqs = [acks[(n, k)]["seq"] for k in range(5) if (n, k) != (1, 2)]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # Nothing of the refused message was kept, and its chat's numbering has no hole where it was.
    refused_chat = stored(chats[1])
    assert REFUSED not in [m.body for m in refused_chat]
    assert [m.seq for m in refused_chat] == list(range(1, len(refused_chat) + 1))
