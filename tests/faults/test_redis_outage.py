"""Redis stopped or paused mid-run: sign-in, forms, /track, chat and a case PATCH keep working, and the
work they acknowledged is finished (the officer's notification is sent) once Redis is back."""
import requests
from sqlalchemy import select

from crm.extensions import db
from crm.models import Case, Message, OutboxJob
from tests.faults.conftest import WAIT, send_form, sign_in, track, wait_for
from tests.webchat.conftest import Client


def _patch_assignee(url, token, reference, assignee):
    return requests.patch(f"{url}/api/v1/cases/{reference}", json={"assignee": assignee},
                          headers={"Authorization": f"Bearer {token}"}, timeout=WAIT)


def _chat(url, token, n):
    """A resident starts a chat and sends n messages; an agent on the same process hears each. Return (acks, heard)."""
    agent = Client(url, "/agent", auth={"token": token})
    resident = Client(url, "/webchat")
    try:
        started = resident.call("start", {"name": f"Outage Resident {n}"})
        agent.expect("assigned", lambda d: d["conversation_id"] == started["conversation_id"])
        acks, heard = [], []
        for i in range(n):
            ack = resident.call("message", {"client_id": f"outage-{i}", "body": f"during the outage {i}"})
            acks.append(ack)
            heard.append(agent.expect("message", lambda d, ack=ack: d.get("id") == ack.get("id")))
        return started["conversation_id"], acks, heard
    finally:
        agent.close()
        resident.close()


def test_with_redis_stopped_everything_answers_and_nothing_acknowledged_is_forgotten(
        app, council, private_redis, processes, sink):
    url = private_redis.url(7)
    server = processes.server(url)
    processes.worker(url)
    assert sign_in(server.url, council["agent"]) == 302  # all well while Redis is up

    private_redis.stop()
    answers = {
        "sign-in": [sign_in(server.url, council["agent"]) for _ in range(3)],
        "form": [send_form(server.url, f"Outside number {n}") for n in range(3)],
        "track": [track(server.url, council["case"], "pat@example.org") for _ in range(3)],
    }
    patch = _patch_assignee(server.url, council["supervisor_token"], council["case"], council["officer"])
    conversation_id, acks, heard = _chat(server.url, council["agent_token"], 5)

    # Everything was answered, none of it with a failure.
    assert answers == {"sign-in": [302] * 3, "form": [303] * 3, "track": [303] * 3}
    assert patch.status_code == 200, patch.text
    assert [a.get("seq") for a in acks] == [1, 2, 3, 4, 5] and len(heard) == 5

    # What was acknowledged is stored...
    db.session.expire_all()
    case = db.session.scalar(select(Case).where(Case.reference == council["case"]))
    assert case.assignee.email == council["officer"]
    assert db.session.query(Case).filter(Case.location_address.like("Outside number %")).count() == 3
    stored = db.session.scalars(select(Message.client_id).where(Message.conversation_id == conversation_id,
                                                                Message.author == "resident")).all()
    assert sorted(stored) == [f"outage-{i}" for i in range(5)]

    # ... and the officer's notification, owed by the committed PATCH, is sent once Redis is back.
    private_redis.start()
    wait_for(lambda: sink.to(council["officer"]), "the officer's notification was sent")
    [notice] = sink.to(council["officer"])
    assert notice["Subject"].startswith(f"Case {council['case']} assigned to you")
    wait_for(lambda: db.session.query(OutboxJob).count() == 0 or db.session.rollback(), "the outbox emptied")


def test_with_redis_paused_sign_in_forms_and_chat_acks_do_not_wait_for_it(app, council, private_redis, processes):
    url = private_redis.url(7)
    server = processes.server(url)
    assert sign_in(server.url, council["agent"]) == 302
    private_redis.pause()
    try:
        assert sign_in(server.url, council["agent"]) == 302
        assert send_form(server.url, "Outside the paused library") == 303
        _, acks, heard = _chat(server.url, council["agent_token"], 3)
        assert [a.get("seq") for a in acks] == [1, 2, 3] and len(heard) == 3
    finally:
        private_redis.resume()


def test_a_chat_assigned_during_an_outage_reaches_the_agent_on_another_process_when_redis_returns(
        app, council, private_redis, processes, database_url):
    if not database_url.startswith("postgresql"):
        import pytest

        pytest.skip("several server processes are a PostgreSQL deployment")
    url = private_redis.url(7)
    one, two = processes.server(url), processes.server(url)
    agent = Client(two.url, "/agent", auth={"token": council["agent_token"]})
    resident = Client(one.url, "/webchat")
    try:
        agent.expect("queue")
        private_redis.stop()
        started = resident.call("start", {"name": "Started In The Outage", "message": "is anyone there?"})
        assert "conversation_id" in started
        private_redis.start()
        assigned = agent.expect("assigned", lambda d: d["conversation_id"] == started["conversation_id"])
        assert [m["body"] for m in assigned["messages"] if m["author"] == "resident"] == ["is anyone there?"]
        # Live across the processes again: both ways.
        ack = resident.call("message", {"client_id": "after-1", "body": "back again"})
        assert agent.expect("message", lambda d: d.get("id") == ack["id"])["body"] == "back again"
        reply = agent.call("message", {"conversation_id": started["conversation_id"], "client_id": "a-1",
                                       "body": "hello from the other process"})
        assert resident.expect("message", lambda d: d.get("id") == reply["id"])["author"] == "agent"
    finally:
        agent.close()
        resident.close()
