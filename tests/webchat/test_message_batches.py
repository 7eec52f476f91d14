"""Chat messages sent at the same moment are stored together (crm.webchat.writer), each as if alone.

Real servers and real python-socketio clients; every client fires its messages without waiting
for acks, so the server's writer gets many at once.
"""
import queue
import time

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import Message
from tests.webchat.conftest import WAIT, agent_with_token
from tests.webchat.test_chat_live import start_chat


@pytest.fixture
def server(app, server_factory):
    """A server whose rate limits leave room for every client here firing at once from one address."""
    return server_factory(WEBCHAT_IP_BURST="1000", WEBCHAT_IP_RATE="1000", WEBCHAT_CONNECTION_BURST="100")


def fire(client, event, data, answers, tag):
    """Emit without waiting; the ack goes to `answers` as (tag, ack)."""
    client.sio.emit(event, data, namespace=client.namespace, callback=lambda ack=None: answers.put((tag, ack)))


def collect(answers, count) -> dict:
    got, deadline = {}, time.monotonic() + WAIT
    while len(got) < count:
        tag, ack = answers.get(timeout=max(0.1, deadline - time.monotonic()))
        got[tag] = ack
    return got


def chats_assigned(console, chat_ids) -> None:
    waiting = set(chat_ids)
    while waiting:
        waiting.discard(console.expect("assigned", lambda d: d["conversation_id"] in waiting)["conversation_id"])


def stored(conversation_id) -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                   .order_by(Message.seq)))


def test_each_chat_keeps_its_senders_order_while_many_chats_send_at_once(server, clients, make_user, api_token):
    agent, token = agent_with_token(make_user, api_token, capacity=10)
    console = clients(server.url, "/agent", auth={"token": token})
    residents = [clients(server.url, "/webchat") for _ in range(6)]
    chats = [start_chat(r, name=f"Resident {n}")["conversation_id"] for n, r in enumerate(residents)]
    chats_assigned(console, chats)

    answers = queue.Queue()
    for k in range(10):
        for n, resident in enumerate(residents):
            fire(resident, "message", {"client_id": f"{n}-{k}", "body": f"resident {n} line {k}"}, answers, (n, k))
    acks = collect(answers, 60)
    assert [ack for ack in acks.values() if "error" in ack] == []

    relayed: dict = {}
    for _ in range(60):
        data = console.expect("message")
        relayed.setdefault(data["conversation_id"], []).append(data["body"])
    for n, chat in enumerate(chats):
        in_order = [f"resident {n} line {k}" for k in range(10)]
        assert [acks[(n, k)]["seq"] for k in range(10)] == sorted(acks[(n, k)]["seq"] for k in range(10))
        assert [m.body for m in stored(chat)] == in_order
        assert relayed[chat] == in_order


def test_a_client_id_sent_several_times_at_once_is_stored_once(server, clients):
    resident, other = clients(server.url, "/webchat"), clients(server.url, "/webchat")
    chat = start_chat(resident)["conversation_id"]
    other_chat = start_chat(other, name="Other Resident")["conversation_id"]

    answers = queue.Queue()
    for n in range(3):
        fire(resident, "message", {"client_id": "same-1", "body": "only once"}, answers, ("same", n))
        fire(other, "message", {"client_id": f"o-{n}", "body": f"other {n}"}, answers, ("other", n))
    acks = collect(answers, 6)

    assert acks[("same", 0)] == acks[("same", 1)] == acks[("same", 2)]
    assert [m.body for m in stored(chat)] == ["only once"]
    assert [m.body for m in stored(other_chat)] == ["other 0", "other 1", "other 2"]
    again = resident.call("message", {"client_id": "same-1", "body": "only once"})
    assert again == acks[("same", 0)]


def test_a_refused_sender_among_many_sends_is_refused_alone(server, clients, make_user, api_token):
    holder, holder_token = agent_with_token(make_user, api_token, capacity=1, name="Holding Agent")
    console = clients(server.url, "/agent", auth={"token": holder_token})
    resident = clients(server.url, "/webchat")
    chat = start_chat(resident)["conversation_id"]
    chats_assigned(console, [chat])
    _, intruder_token = agent_with_token(make_user, api_token, capacity=0, name="Other Agent")
    intruder = clients(server.url, "/agent", auth={"token": intruder_token})
    leaver = clients(server.url, "/webchat")
    left_chat = start_chat(leaver, name="Leaving Resident")["conversation_id"]
    assert leaver.call("end")["state"] == "ended"

    answers = queue.Queue()
    for k in range(5):
        fire(resident, "message", {"client_id": f"r-{k}", "body": f"resident {k}"}, answers, ("resident", k))
        fire(console, "message", {"conversation_id": chat, "client_id": f"a-{k}", "body": f"agent {k}"},
             answers, ("holder", k))
        if k == 2:
            fire(intruder, "message", {"conversation_id": chat, "client_id": "x-1", "body": "not my chat"},
                 answers, ("intruder", 0))
            fire(leaver, "message", {"client_id": "l-1", "body": "after the end"}, answers, ("leaver", 0))
    acks = collect(answers, 12)

    assert acks[("intruder", 0)]["error"]["code"] == "not_yours"
    assert acks[("leaver", 0)]["error"]["code"] == "ended"
    assert all("error" not in ack for tag, ack in acks.items() if tag[0] in ("resident", "holder"))
    bodies = [m.body for m in stored(chat)]
    assert sorted(bodies) == sorted([f"resident {k}" for k in range(5)] + [f"agent {k}" for k in range(5)])
    assert "after the end" not in [m.body for m in stored(left_chat)]


def test_a_message_is_acknowledged_only_once_it_is_committed(server, clients):
    residents = [clients(server.url, "/webchat") for _ in range(4)]
    for n, resident in enumerate(residents):
        start_chat(resident, name=f"Resident {n}")
    seen_at_ack, engine = queue.Queue(), db.engine

    def check(ack=None):
        # Another connection, at the moment the ack arrives: the message must already be there.
        with engine.connect() as connection:
            found = connection.execute(select(Message.id).where(Message.id == ack["id"])).scalar()
        seen_at_ack.put(found == ack["id"])

    for k in range(10):
        for n, resident in enumerate(residents):
            resident.sio.emit("message", {"client_id": f"{n}-{k}", "body": f"line {k}"}, namespace="/webchat",
                              callback=check)
    results = [seen_at_ack.get(timeout=WAIT) for _ in range(40)]
    assert results == [True] * 40


def test_a_chat_locked_elsewhere_keeps_its_order_while_the_other_chats_flow(server, clients, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks held by another session are a PostgreSQL matter")
    from tests.webchat.test_processes import raw_connection

    stuck, free = clients(server.url, "/webchat"), clients(server.url, "/webchat")
    stuck_chat = start_chat(stuck, name="Stuck Resident")["conversation_id"]
    free_chat = start_chat(free, name="Free Resident")["conversation_id"]
    blocker = raw_connection(database_url)
    answers = queue.Queue()
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT id FROM conversations WHERE id = %s FOR UPDATE", (stuck_chat,))
        for k in range(3):
            fire(stuck, "message", {"client_id": f"s-{k}", "body": f"stuck {k}"}, answers, ("stuck", k))
        for k in range(3):
            assert free.call("message", {"client_id": f"f-{k}", "body": f"free {k}"})["seq"] == k + 1
        assert answers.empty()  # the locked chat's messages wait for its lock, not the others
    finally:
        blocker.rollback()
        blocker.close()
    acks = collect(answers, 3)
    assert [acks[("stuck", k)]["seq"] for k in range(3)] == [1, 2, 3]
    assert [m.body for m in stored(stuck_chat)] == ["stuck 0", "stuck 1", "stuck 2"]
    assert [m.body for m in stored(free_chat)] == ["free 0", "free 1", "free 2"]
