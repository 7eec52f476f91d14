"""Several server processes, a killed process, and a database that stalls: no message lost, no hub blocked."""
import threading

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from crm.extensions import db
from crm.models import Conversation, Message
from tests.webchat.conftest import agent_with_token


@pytest.fixture
def pg_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("several processes and row locks are a PostgreSQL deployment")
    return database_url


def raw_connection(database_url):
    url = make_url(database_url).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=False)


def test_a_stalled_database_call_does_not_delay_other_chats(pg_only, app, server_factory, clients,
                                                            make_user, api_token):
    """One resident's send waits on a row lock held by another session (a slow query, as far as the
    server knows); meanwhile other chats' messages are stored and acknowledged. With a driver that
    blocks the eventlet hub, the second chat's ack could not come until the lock is released."""
    server = server_factory()
    _, token = agent_with_token(make_user, api_token, capacity=5)
    agent_client = clients(server.url, "/agent", auth={"token": token})
    stuck, free = clients(server.url, "/webchat"), clients(server.url, "/webchat")
    stuck_chat = stuck.call("start", {"name": "Stuck Resident"})
    free_chat = free.call("start", {"name": "Free Resident"})
    for chat in (stuck_chat, free_chat):  # assignment follows the start ack: let it happen first
        agent_client.expect("assigned", lambda d, chat=chat: d["conversation_id"] == chat["conversation_id"])

    blocker = raw_connection(pg_only)
    stuck_ack = {}
    arrived = threading.Event()
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT id FROM conversations WHERE id = %s FOR UPDATE", (stuck_chat["conversation_id"],))
            cur.execute("SELECT pg_sleep(0.2)")  # the blocking session is itself mid-query

        def on_ack(ack):
            stuck_ack.update(ack)
            arrived.set()

        stuck.sio.emit("message", {"client_id": "stuck-1", "body": "waits for the lock"},
                       namespace="/webchat", callback=on_ack)
        for n in range(5):
            ack = free.call("message", {"client_id": f"free-{n}", "body": f"flows {n}"})
            assert ack["seq"] == n + 1
            assert agent_client.expect("message", lambda d: d["id"] == ack["id"])
        assert not arrived.is_set()  # the stuck send really was waiting on the database all along
    finally:
        blocker.rollback()
        blocker.close()
    assert arrived.wait(15) and stuck_ack["seq"] == 1


def test_two_processes_share_the_queue_and_chat_across_redis(pg_only, app, redis_url, server_factory, clients,
                                                             make_user, api_token):
    one = server_factory(redis_url=redis_url)
    two = server_factory(redis_url=redis_url)
    agent, token = agent_with_token(make_user, api_token, capacity=2, name="Remote Agent")
    agent_client = clients(two.url, "/agent", auth={"token": token})
    resident = clients(one.url, "/webchat")
    started = resident.call("start", {"name": "Across Processes", "message": "hello from process one"})
    assigned = agent_client.expect("assigned")
    assert assigned["conversation_id"] == started["conversation_id"]
    assert resident.expect("status", lambda d: d["state"] == "assigned")["agent_name"] == "Remote Agent"
    for n in range(5):
        ack = resident.call("message", {"client_id": f"p1-{n}", "body": f"resident {n}"})
        assert agent_client.expect("message", lambda d: d["id"] == ack["id"])["body"] == f"resident {n}"
        reply = agent_client.call("message", {"conversation_id": started["conversation_id"],
                                              "client_id": f"p2-{n}", "body": f"agent {n}"})
        assert resident.expect("message", lambda d: d["id"] == reply["id"])["body"] == f"agent {n}"
    agent_client.call("typing", {"conversation_id": started["conversation_id"], "typing": True})
    assert resident.expect("typing")["typing"] is True
    # A second resident on process two is queued behind no one and goes to the same agent.
    other = clients(two.url, "/webchat")
    second = other.call("start", {"name": "Second Resident"})
    assert agent_client.expect("assigned")["conversation_id"] == second["conversation_id"]


def test_a_killed_process_loses_no_stored_message_and_clients_resume(pg_only, app, redis_url, server_factory,
                                                                      clients, make_user, api_token):
    server = server_factory(redis_url=redis_url)
    _, token = agent_with_token(make_user, api_token)
    agent_client = clients(server.url, "/agent", auth={"token": token})
    resident = clients(server.url, "/webchat")
    started = resident.call("start", {"name": "Unlucky Resident"})
    conversation_id = started["conversation_id"]
    agent_client.expect("assigned")
    acked = []
    for n in range(5):
        acked.append(resident.call("message", {"client_id": f"before-{n}", "body": f"before {n}"}))
        acked.append(agent_client.call("message", {"conversation_id": conversation_id,
                                                   "client_id": f"agent-before-{n}", "body": f"reply {n}"}))

    resident.drain(), agent_client.drain()  # forget the first connection's events
    server.kill()
    server.start()  # same port: the clients' own reconnection finds it
    resident.expect("__connect__")
    agent_client.expect("__connect__")

    resumed = resident.call("resume", {"token": started["token"], "after_seq": 0})
    seqs = [m["seq"] for m in resumed["messages"]]
    assert seqs == sorted(set(seqs))
    assert {a["id"] for a in acked} <= {m["id"] for m in resumed["messages"]}
    # A send the resident never saw acknowledged is retried with its client id: stored once.
    retry = {"client_id": "after-1", "body": "are you still there?"}
    first, second = resident.call("message", retry), resident.call("message", retry)
    assert first == second
    assert agent_client.expect("message", lambda d: d["id"] == first["id"])
    mine = agent_client.call("mine")
    assert [c["conversation_id"] for c in mine["items"]] == [conversation_id]
    db.session.expire_all()
    stored = db.session.scalars(select(Message).where(Message.conversation_id == conversation_id)).all()
    assert len([m for m in stored if m.client_id == "after-1"]) == 1
    assert {a["id"] for a in acked} | {first["id"]} <= {m.id for m in stored}
    assert db.session.get(Conversation, conversation_id).status == "assigned"
