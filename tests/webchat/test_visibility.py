"""The visibility policy on the sockets: a real server process and real python-socketio clients."""
from sqlalchemy import select

from crm.extensions import db
from crm.models import AgentSkill, AuditLog, Conversation
from tests import factories
from tests.visibility_world import build_world


def _token(user):
    return factories.token(user)


def test_a_sensitive_chat_is_redacted_in_the_shared_queue_and_taken_only_with_the_topic(app, server, clients):
    world = build_world()
    agent = world.users["agent"]
    watcher = clients(server.url, "/agent", auth={"token": _token(agent)})
    assert watcher.call("presence", {"status": "busy"})["ok"] is True  # takes nothing automatically

    resident = clients(server.url, "/webchat")
    started = resident.call("start", {"name": "Jane Carer", "email": "carer@vis.example",
                                      "topic": "adult_social_care", "message": "SECRET-CHAT-OPENING"})
    chat_id = started["conversation_id"]
    queued = watcher.expect("queue", lambda d: any(i["conversation_id"] == chat_id for i in d["items"]))
    item = next(i for i in queued["items"] if i["conversation_id"] == chat_id)
    assert item["redacted"] is True and item["email"] is None and "Jane" not in item["name"]
    assert "Adult Social Care" in item["name"]

    refused = watcher.call("accept", {"conversation_id": chat_id})
    assert refused["error"]["code"] == "not_allowed"

    db.session.add(AgentSkill(user_id=agent.id, topic="adult_social_care"))  # a supervisor gives the topic
    db.session.commit()
    taken = watcher.call("accept", {"conversation_id": chat_id})
    assert taken.get("ok") is True, taken
    assert "SECRET-CHAT-OPENING" in str(taken["messages"])
    db.session.expire_all()
    assert db.session.get(Conversation, chat_id).assignee_id == agent.id


def test_an_agent_cannot_read_or_write_in_another_agents_chat_and_a_supervisor_reads_it_audited(
        app, server, clients):
    world = build_world()
    agent, supervisor = world.users["agent"], world.users["supervisor"]
    chat = world.conversations["asc_chat"]
    other = clients(server.url, "/agent", auth={"token": _token(agent)})
    other.call("presence", {"status": "busy"})
    assert other.call("history", {"conversation_id": chat.id, "after_seq": 0})["error"]["code"] == "not_yours"
    sent = other.call("message", {"conversation_id": chat.id, "client_id": "x-1", "body": "butting in"})
    assert "error" in sent
    assert other.call("transfer", {"conversation_id": chat.id, "agent_id": agent.id})["error"]["code"] == "not_yours"

    boss = clients(server.url, "/agent", auth={"token": _token(supervisor)})
    boss.call("presence", {"status": "busy"})
    read = boss.call("history", {"conversation_id": chat.id, "after_seq": 0})
    assert "SECRET-ASC-CHAT" in str(read["messages"])
    db.session.expire_all()
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "conversation.view_sensitive",
                                                    AuditLog.target_id == str(chat.id)))


def test_linking_a_chat_to_a_restricted_record_is_refused(app, server, clients):
    world = build_world()
    holder = clients(server.url, "/agent", auth={"token": _token(world.users["agent2"])})
    holder.call("presence", {"status": "busy"})
    chat, rita = world.conversations["live_chat"], world.customers["rita"]
    refused = holder.call("link_customer", {"conversation_id": chat.id, "customer_id": rita.id})
    assert refused["error"]["code"] == "forbidden"
    db.session.expire_all()
    assert db.session.get(Conversation, chat.id).customer_id == world.customers["jane"].id
