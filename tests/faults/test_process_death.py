"""A server process dies with an agent's console on it: the resident, on another process, is told live
that their adviser had to leave, and the chat goes back to the head of the queue to the next agent."""
import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import Conversation, Message
from tests.faults.conftest import wait_for
from tests.webchat.conftest import Client, agent_with_token


def test_when_an_agents_process_dies_the_resident_hears_at_once_and_the_chat_is_requeued(
        app, database_url, private_redis, processes, make_user, api_token):
    if not database_url.startswith("postgresql"):
        pytest.skip("several server processes are a PostgreSQL deployment")
    url = private_redis.url(7)
    settings = {"WEBCHAT_GRACE_SECONDS": "2", "WEBCHAT_HEARTBEAT_SECONDS": "1"}
    staying, dying = processes.server(url, **settings), processes.server(url, **settings)
    _, leaving_token = agent_with_token(make_user, api_token, capacity=1, name="Leaving Agent")
    _, next_token = agent_with_token(make_user, api_token, capacity=1, name="Next Agent")
    leaving = Client(dying.url, "/agent", auth={"token": leaving_token})
    resident = Client(staying.url, "/webchat")
    following = None
    try:
        started = resident.call("start", {"name": "Left Behind"})
        leaving.expect("assigned", lambda d: d["conversation_id"] == started["conversation_id"])
        resident.expect("status", lambda d: d["state"] == "assigned")
        dying.kill()
        note = resident.expect("message", lambda d: d["author"] == "system" and "had to leave" in d["body"])
        assert resident.expect("status", lambda d: d["state"] == "queued")["position"] == 1
        following = Client(staying.url, "/agent", auth={"token": next_token})
        assert following.expect("assigned")["conversation_id"] == started["conversation_id"]
        db.session.expire_all()
        stored = db.session.scalars(select(Message.id).where(Message.conversation_id == started["conversation_id"],
                                                             Message.author == "system")).all()
        assert note["id"] in stored
        wait_for(lambda: db.session.get(Conversation, started["conversation_id"]).status == "assigned"
                 or db.session.rollback(), "the chat was given to the next agent")
    finally:
        for client in (leaving, resident, following):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - its server is gone
                    pass
