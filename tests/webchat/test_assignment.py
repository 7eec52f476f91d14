"""Assignment passes, read straight from the database (no server): who is free, and who gets the next chat."""
from datetime import timedelta

from sqlalchemy import event

from crm.extensions import db
from crm.models import AgentPresence, AgentSocket, utcnow
from crm.webchat import assignment, chats
from tests import factories


def _on_shift(name, status="available", capacity=2, connected=True):
    agent = factories.user("agent", name=name, email=f"{name.lower()}@council.example")
    agent.chat_capacity = capacity
    db.session.add(AgentPresence(user_id=agent.id, status=status, since=utcnow()))
    if connected:
        db.session.add(AgentSocket(sid=f"sid-{name}", user_id=agent.id, server_id="here", seen_at=utcnow()))
    db.session.flush()
    return agent


def _queued(n):
    made = chats.start_chats([chats.StartRequest({"name": f"Resident {k}"}, None, f"10.0.0.{k}") for k in range(n)])
    db.session.flush()
    return [m["conversation_id"] for m in made]


def _statements_during(action):
    statements = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        return action(), statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def test_only_available_connected_agents_are_free_each_with_the_chats_they_hold(app):
    ada, bob = _on_shift("Ada"), _on_shift("Bob")
    _on_shift("Cy", status="busy")
    _on_shift("Di", connected=False)
    _queued(3)
    assignment.assign_waiting()
    held = {agent.name: (load, last is not None) for agent, load, last in assignment.available_agents_with_loads()}
    assert held == {"Ada": (2, True), "Bob": (1, True)}
    assert {(agent.name, load, capacity) for agent, load, capacity in assignment.available_agents()} == {
        ("Ada", 2, 2), ("Bob", 1, 2)}
    assert {ada.id, bob.id} == {a.id for a, _, _ in assignment.available_agents()}


def test_a_pass_serves_the_oldest_chats_first_up_to_every_agents_capacity(app):
    ada, bob = _on_shift("Ada", capacity=1), _on_shift("Bob", capacity=2)
    *oldest, youngest = _queued(4)
    made = assignment.assign_waiting()
    assert sorted(c.id for c in made.made) == oldest
    assert sorted(c.assignee_id for c in made.made) == sorted([ada.id, bob.id, bob.id])
    assert [c.id for c in made.waiting] == [youngest]


def test_among_equal_loads_the_agent_longest_since_their_last_chat_goes_first(app):
    ada, bob = _on_shift("Ada"), _on_shift("Bob")
    _queued(2)
    for conversation in assignment.assign_waiting().made:
        minutes = 10 if conversation.assignee_id == ada.id else 1
        conversation.chat.assigned_at = utcnow() - timedelta(minutes=minutes)
    db.session.flush()
    (later,) = _queued(1)
    assert [c.assignee_id for c in assignment.assign_waiting().made if c.id == later] == [ada.id]


def test_a_pass_reads_the_agents_and_their_loads_in_one_statement(app):
    for name in ("Ada", "Bob", "Cy"):
        _on_shift(name, capacity=5)
    _queued(6)
    result, statements = _statements_during(assignment.assign_waiting)
    assert len(result.made) == 6
    # One statement reads who is free with the chats each holds; none reads the loads again.
    assert sum("agent_presence" in sql for sql in statements) == 1
    assert sum("count(" in sql.lower() for sql in statements) == 1
