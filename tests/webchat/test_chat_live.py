"""Resident and agent chat through a real server process with real python-socketio clients."""
import uuid
from multiprocessing.pool import ThreadPool

import pytest
import socketio
from sqlalchemy import select

from crm.extensions import db
from crm.models import ChatSession, Contact, Conversation, Message, OpeningHours
from tests import factories
from tests.webchat.conftest import agent_with_token


def start_chat(client, name="Jane Resident", **extra):
    ack = client.call("start", {"name": name, **extra})
    assert "error" not in ack, ack
    return ack


def send(client, body, client_id=None, **extra):
    return client.call("message", {"client_id": client_id or uuid.uuid4().hex, "body": body, **extra})


def fresh(model, ident):
    db.session.expire_all()
    return db.session.get(model, ident)


def test_resident_and_agent_chat_end_to_end(server, clients, make_user, api_token):
    agent, token = agent_with_token(make_user, api_token, name="Bethany Agent")
    agent_client = clients(server.url, "/agent", auth={"token": token})
    resident = clients(server.url, "/webchat")

    started = start_chat(resident, email="jane@example.org", topic="council_tax", message="Hello, my bill is wrong")
    assigned = agent_client.expect("assigned", lambda d: d["conversation_id"] == started["conversation_id"])
    assert [m["body"] for m in assigned["messages"]] == ["Hello, my bill is wrong"]
    assert resident.expect("status", lambda d: d["state"] == "assigned")["agent_name"] == "Bethany Agent"

    ack = send(resident, "It says £2,000")
    assert ack["seq"] == 2
    relayed = agent_client.expect("message", lambda d: d["id"] == ack["id"])
    assert relayed == {"id": ack["id"], "seq": 2, "author": "resident", "body": "It says £2,000",
                       "at": relayed["at"], "client_id": relayed["client_id"],
                       "conversation_id": started["conversation_id"]}

    resident.call("typing", {"typing": True})
    assert agent_client.expect("typing")["typing"] is True
    agent_client.call("typing", {"conversation_id": started["conversation_id"], "typing": True})
    assert resident.expect("typing")["typing"] is True

    reply = agent_client.call("message", {"conversation_id": started["conversation_id"],
                                          "client_id": "a-1", "body": "<b>Let me check</b>"})
    got = resident.expect("message", lambda d: d["id"] == reply["id"])
    assert got["author"] == "agent" and got["body"] == "<b>Let me check</b>" and got["seq"] == 3

    closed = agent_client.call("close", {"conversation_id": started["conversation_id"],
                                         "outcome": "resolved_first_time"})
    assert closed["ok"] is True
    assert resident.expect("status", lambda d: d["state"] == "ended")

    conversation = fresh(Conversation, started["conversation_id"])
    assert conversation.status == "closed"
    contacts = db.session.scalars(select(Contact).where(Contact.conversation_id == conversation.id)).all()
    assert len(contacts) == 1
    assert (contacts[0].channel, contacts[0].outcome, contacts[0].agent_id) == ("webchat", "resolved_first_time", agent.id)
    assert contacts[0].customer.identities[0].value == "jane@example.org"
    bodies = [m.body for m in conversation.messages]
    assert bodies[:3] == ["Hello, my bill is wrong", "It says £2,000", "<b>Let me check</b>"]
    assert [m.seq for m in conversation.messages] == list(range(1, len(bodies) + 1))


def test_same_client_id_twice_is_stored_once(server, clients, make_user, api_token):
    resident = clients(server.url, "/webchat")
    started = start_chat(resident)
    first = send(resident, "once only", client_id="dup-1")
    again = send(resident, "once only", client_id="dup-1")
    assert first == again
    rows = db.session.scalars(select(Message).where(Message.conversation_id == started["conversation_id"])).all()
    assert [m.body for m in rows] == ["once only"]


def test_resident_resumes_after_a_drop_and_sees_each_message_once(server, clients, make_user, api_token):
    _, token = agent_with_token(make_user, api_token)
    agent_client = clients(server.url, "/agent", auth={"token": token})
    resident = clients(server.url, "/webchat")
    started = start_chat(resident)
    agent_client.expect("assigned")
    mine = send(resident, "before the drop")
    resident.close()

    for n in range(3):
        agent_client.call("message", {"conversation_id": started["conversation_id"], "client_id": f"r{n}",
                                      "body": f"while you were away {n}"})
    agent_client.call("note", {"conversation_id": started["conversation_id"], "client_id": "n1",
                               "body": "internal: resident sounds worried"})

    back = clients(server.url, "/webchat")
    resumed = back.call("resume", {"token": started["token"], "after_seq": mine["seq"]})
    assert resumed["status"] == "assigned"
    assert [m["body"] for m in resumed["messages"]] == [f"while you were away {n}" for n in range(3)]
    assert [m["seq"] for m in resumed["messages"]] == [mine["seq"] + 1, mine["seq"] + 2, mine["seq"] + 3]
    everything = back.call("resume", {"token": started["token"], "after_seq": 0})
    assert "internal" not in " ".join(m["body"] for m in everything["messages"])
    # The resumed socket is in the chat again: it gets the next message live.
    reply = agent_client.call("message", {"conversation_id": started["conversation_id"], "client_id": "r9",
                                          "body": "still there?"})
    assert back.expect("message", lambda d: d["id"] == reply["id"])["body"] == "still there?"


def test_transfer_to_another_agent_carries_the_note_but_never_to_the_resident(server, clients, make_user, api_token):
    first, token1 = agent_with_token(make_user, api_token, name="First Agent")
    second, token2 = agent_with_token(make_user, api_token, capacity=0, name="Second Agent")
    a1 = clients(server.url, "/agent", auth={"token": token1})
    a2 = clients(server.url, "/agent", auth={"token": token2})
    resident = clients(server.url, "/webchat")
    started = start_chat(resident, message="I need adult social care")
    a1.expect("assigned")
    ack = a1.call("transfer", {"conversation_id": started["conversation_id"], "agent_id": second.id,
                               "note": "Needs ASC, already verified address"})
    assert ack == {"ok": True}
    got = a2.expect("assigned", lambda d: d["conversation_id"] == started["conversation_id"])
    assert any(m.get("internal") and "already verified" in m["body"] for m in got["messages"])
    assert a1.expect("unassigned")["reason"] == "transferred"
    assert resident.expect("status", lambda d: d.get("agent_name") == "Second Agent")["state"] == "assigned"
    everything = resident.call("resume", {"token": started["token"], "after_seq": 0})
    assert not any("verified" in m["body"] for m in everything["messages"])
    assert fresh(Conversation, started["conversation_id"]).assignee_id == second.id


def test_handle_time_of_a_transferred_chat_runs_from_the_first_agent(server, clients, make_user, api_token):
    first, token1 = agent_with_token(make_user, api_token, name="First Holder")
    second, token2 = agent_with_token(make_user, api_token, capacity=0, name="Second Holder")
    a1 = clients(server.url, "/agent", auth={"token": token1})
    a2 = clients(server.url, "/agent", auth={"token": token2})
    resident = clients(server.url, "/webchat")
    started = start_chat(resident, message="Council tax question")
    a1.expect("assigned")
    first_start = fresh(ChatSession, started["conversation_id"]).assigned_at
    assert a1.call("transfer", {"conversation_id": started["conversation_id"], "agent_id": second.id}) == {"ok": True}
    got = a2.expect("assigned", lambda d: d["conversation_id"] == started["conversation_id"])
    assert got["reason"] == "transferred"  # the console says "transferred to you", not "new chat"
    second_start = fresh(ChatSession, started["conversation_id"]).assigned_at
    assert second_start > first_start
    closed = a2.call("close", {"conversation_id": started["conversation_id"], "outcome": "resolved_first_time"})
    contact = fresh(Contact, closed["contact_id"])
    assert contact.agent_id == second.id
    assert contact.started_at == first_start  # both agents' time, not only the second's


def test_transfer_to_a_queue_puts_the_chat_at_the_head(server, clients, make_user, api_token):
    from crm.models import Queue

    db.session.add_all([Queue(code="webchat", name="Webchat", channel="webchat"),
                        Queue(code="webchat_asc", name="Care chats", channel="webchat")])
    db.session.commit()
    agent, token = agent_with_token(make_user, api_token, capacity=1)
    a1 = clients(server.url, "/agent", auth={"token": token})
    first = clients(server.url, "/webchat")
    second = clients(server.url, "/webchat")
    one = start_chat(first, name="Early Bird")
    a1.expect("assigned")
    two = start_chat(second, name="Later Person")
    assert second.expect("status", lambda d: d["state"] == "queued")["position"] == 1
    a1.call("presence", {"status": "busy"})
    assert a1.call("transfer", {"conversation_id": one["conversation_id"], "queue": "webchat_asc",
                                "note": "care question"}) == {"ok": True}
    queued = first.expect("status", lambda d: d["state"] == "queued")
    assert queued["position"] == 1  # put back ahead of the chat that came later
    conversation = fresh(Conversation, one["conversation_id"])
    assert conversation.queue.code == "webchat_asc" and conversation.chat.priority == 1
    assert two["conversation_id"] != one["conversation_id"]


def test_three_agents_and_ten_residents_assignment_respects_capacity_fifo(server, clients, make_user, api_token):
    capacities = {"A": 2, "B": 3, "C": 1}
    agents = {}
    for label, capacity in capacities.items():
        user, token = agent_with_token(make_user, api_token, capacity=capacity, name=f"Agent {label}")
        agents[label] = (user, clients(server.url, "/agent", auth={"token": token}))
    residents, starts = [], []
    for n in range(10):
        resident = clients(server.url, "/webchat")
        starts.append(start_chat(resident, name=f"Resident {n}"))
        residents.append(resident)

    for label, (user, client) in agents.items():
        for _ in range(capacities[label]):
            client.expect("assigned")
    db.session.expire_all()
    chats = {s["conversation_id"]: db.session.get(Conversation, s["conversation_id"]) for s in starts}
    held = {label: sorted(c.id for c in chats.values() if c.assignee_id == user.id)
            for label, (user, _) in agents.items()}
    assert {label: len(ids) for label, ids in held.items()} == capacities
    order = [s["conversation_id"] for s in starts]
    assert sorted(sum(held.values(), [])) == order[:6]  # FIFO: the first six are served
    assert [chats[i].status for i in order[6:]] == ["queued"] * 4
    # Earlier pushes may still be on their way (sent while the assigner was serving the first six):
    # the resident is told, in the end, that they are first in the queue.
    residents[6].expect("status", lambda d: d["state"] == "queued" and d["position"] == 1)

    # Least load first: when C (1 chat) frees a slot it gets the next resident, not B.
    c_user, c_client = agents["C"]
    c_client.call("close", {"conversation_id": held["C"][0], "outcome": "signposted"})
    got = c_client.expect("assigned")
    assert got["conversation_id"] == order[6]
    assert residents[6].expect("status", lambda d: d["state"] == "assigned")["agent_name"] == "Agent C"


def test_starts_sent_together_are_given_out_first_come_first_served_each_once(server, clients, make_user,
                                                                                api_token):
    user, token = agent_with_token(make_user, api_token, capacity=6)
    agent = clients(server.url, "/agent", auth={"token": token})
    residents = [clients(server.url, "/webchat") for _ in range(10)]
    pool = ThreadPool(10)
    try:  # all at once: the starter stores them in batches and gives each batch out as it commits it
        starts = pool.map(lambda pair: start_chat(pair[1], name=f"Resident {pair[0]}"), enumerate(residents))
    finally:
        pool.close()

    given = [agent.expect("assigned")["conversation_id"] for _ in range(6)]
    db.session.expire_all()
    chats = sorted((db.session.get(Conversation, s["conversation_id"]) for s in starts),
                   key=lambda c: (c.chat.queued_at, c.id))
    assert sorted(given) == sorted(c.id for c in chats[:6])  # the first six to arrive, each given once
    assert {c.assignee_id for c in chats[:6]} == {user.id}
    assert [c.status for c in chats[6:]] == ["queued"] * 4
    for start, resident in zip(starts, residents):
        state = "assigned" if start["conversation_id"] in given else "queued"
        resident.expect("status", lambda d, state=state: d["state"] == state)
    assert not [e for e in agent.drain() if e[0] == "assigned"]


def test_agent_who_disconnects_has_chats_requeued_at_the_head_after_grace(app, server_factory, clients,
                                                                         make_user, api_token):
    server = server_factory(WEBCHAT_GRACE_SECONDS=1)
    _, token1 = agent_with_token(make_user, api_token, capacity=1, name="Leaving Agent")
    _, token2 = agent_with_token(make_user, api_token, capacity=1, name="Next Agent")
    leaving = clients(server.url, "/agent", auth={"token": token1})
    resident = clients(server.url, "/webchat")
    started = start_chat(resident)
    leaving.expect("assigned")
    assigned = resident.expect("status", lambda d: d["state"] == "assigned")
    leaving.close()
    status = resident.expect("status", lambda d: d["state"] == "queued" and d["as_of"] > assigned["as_of"])
    assert status["position"] == 1
    assert fresh(ChatSession, started["conversation_id"]).priority == 1
    nxt = clients(server.url, "/agent", auth={"token": token2})
    assert nxt.expect("assigned")["conversation_id"] == started["conversation_id"]
    assert resident.expect("status", lambda d: d["state"] == "assigned")["agent_name"] == "Next Agent"


def test_out_of_hours_the_chat_becomes_a_case_with_a_reference(server, clients):
    from datetime import time as clock

    from crm.webchat.hours import local_now

    factories.service(code="council_tax", name="Council Tax", categories=(("council_tax_bill", "Bill"),))
    tomorrow = (local_now().weekday() + 1) % 7
    db.session.add(OpeningHours(weekday=tomorrow, opens=clock(9), closes=clock(17)))
    db.session.commit()

    resident = clients(server.url, "/webchat")
    refused = resident.call("start", {"name": "Night Owl"})
    assert refused["error"]["code"] == "closed"
    ack = resident.call("start", {"name": "Night Owl", "email": "owl@example.org", "topic": "council_tax_bill",
                                  "message": "Please call me about my bill"})
    assert ack["state"] == "offline" and ack["reference"].startswith("CAS-")
    conversation = fresh(Conversation, ack["conversation_id"])
    assert conversation.case.reference == ack["reference"]
    assert conversation.messages[0].body == "Please call me about my bill"
    contact = db.session.scalar(select(Contact).where(Contact.conversation_id == conversation.id))
    assert contact.outcome == "case_raised" and contact.case_id == conversation.case_id
    resumed = resident.call("resume", {"token": ack["token"], "after_seq": 0})
    assert resumed["status"] == "offline" and resumed["state"]["reference"] == ack["reference"]


def test_no_agent_in_time_offers_leave_a_message_in_the_same_conversation(app, server_factory, clients):
    server = server_factory(WEBCHAT_NO_AGENT_SECONDS=0)
    resident = clients(server.url, "/webchat")
    started = start_chat(resident, email="wait@example.org", message="Anyone there?")
    assert resident.expect("status", lambda d: d.get("offline_offer"))["state"] == "queued"
    left = resident.call("leave_message", {"body": "Please email me back"})
    assert left["reference"] == f"WEB-{started['conversation_id']:06d}"
    conversation = fresh(Conversation, started["conversation_id"])
    assert conversation.channel == "email" and conversation.status == "open"
    assert [m.body for m in conversation.messages][:2] == ["Anyone there?", "Please email me back"]


def test_staff_roles_are_checked_at_connect_and_on_every_event(server, clients, make_user, api_token):
    officer, officer_token = agent_with_token(make_user, api_token, role="service_officer")
    with pytest.raises(socketio.exceptions.ConnectionError):
        clients(server.url, "/agent", auth={"token": officer_token})
    with pytest.raises(socketio.exceptions.ConnectionError):
        clients(server.url, "/agent")
    with pytest.raises(socketio.exceptions.ConnectionError):
        clients(server.url, "/agent", auth={"token": "crm_not-a-real-token"})

    agent, token = agent_with_token(make_user, api_token)
    client = clients(server.url, "/agent", auth={"token": token})
    assert client.call("presence", {"status": "busy"}) == {"ok": True, "status": "busy"}
    agent.role = "service_officer"
    db.session.commit()
    # A role change ends the user's sessions (crm.auth.sessions): the socket is signed out, not just refused.
    assert client.call("presence", {"status": "available"})["error"]["code"] == "unauthorized"


BAD_PAYLOADS = [None, "text", 42, [], {"body": None}, {"client_id": "", "body": "x"}, {"client_id": "x" * 500, "body": "x"},
                {"client_id": "c", "body": 7}, {"conversation_id": "abc"}, {"conversation_id": -1},
                {"token": ["x"], "after_seq": "zero"}, {"status": "sleeping"}, {"outcome": "shrug"}]


def test_invalid_payloads_get_error_acks_and_the_connection_lives_on(server, clients, make_user, api_token):
    resident = clients(server.url, "/webchat")
    for event in ("message", "typing", "end", "leave_message", "rate", "transcript", "resume"):
        for payload in BAD_PAYLOADS:
            ack = resident.call(event, payload)
            assert "error" in ack, (event, payload, ack)
    for payload in BAD_PAYLOADS + [{"name": ""}, {"name": "x" * 1000}, {"name": "Jo", "email": "not-an-email"}]:
        assert "error" in resident.call("start", payload), payload

    _, token = agent_with_token(make_user, api_token)
    agent_client = clients(server.url, "/agent", auth={"token": token})
    for event in ("presence", "accept", "message", "note", "typing", "transfer", "close", "raise_case",
                  "link_customer", "history"):
        for payload in BAD_PAYLOADS:
            ack = agent_client.call(event, payload)
            assert "error" in ack, (event, payload, ack)
    assert "error" not in start_chat(clients(server.url, "/webchat"))  # that one hit the rate limit
    assert agent_client.call("presence", {"status": "available"})["ok"] is True


def test_input_limits_size_rate_and_open_chats(app, server_factory, clients):
    server = server_factory(WEBCHAT_CONNECTION_BURST=5, WEBCHAT_CONNECTION_RATE=0.01,
                            WEBCHAT_MAX_MESSAGE_CHARS=100, WEBCHAT_MAX_OPEN_PER_VISITOR=1)
    resident = clients(server.url, "/webchat", auth={"visitor_id": "visitor-1"})
    start_chat(resident)
    assert send(resident, "x" * 101)["error"]["code"] == "too_long"
    codes = [("error" in ack and ack["error"]["code"]) or "ok" for ack in (send(resident, f"m{n}") for n in range(8))]
    assert codes.count("ok") == 4 and set(codes[4:]) == {"rate_limited"}  # burst 5 less the start
    again = clients(server.url, "/webchat", auth={"visitor_id": "visitor-1"})
    assert again.call("start", {"name": "Same Visitor"})["error"]["code"] == "too_many_chats"
    other = clients(server.url, "/webchat", auth={"visitor_id": "visitor-2"})
    start_chat(other)
