"""Supervisor fixtures: a scripted day with fixed clocks, and a real server for the push tests."""
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from crm.extensions import db
from crm.models import AgentPresence, AgentSocket, Case, ChatSession, Contact, Conversation, Queue
from tests import factories
from tests.support import ServerProcess

# A Tuesday in November: London is on UTC, and the office day (09:00-17:00) is under way.
NOW = datetime(2026, 11, 24, 14, 0, tzinfo=timezone.utc)


def at(hh_mm: str, days: int = 0) -> datetime:
    """Return a time on the scripted day (or `days` later)."""
    hour, minute = map(int, hh_mm.split(":"))
    return NOW.replace(hour=hour, minute=minute) + timedelta(days=days)


@dataclass
class ScriptedDay:
    """Handles on what the scripted day made."""

    users: dict = field(default_factory=dict)
    queues: dict = field(default_factory=dict)
    conversations: dict = field(default_factory=dict)
    cases: dict = field(default_factory=dict)
    customer: object = None


def _conversation(day, key, customer, channel, queue, status, *, created, assignee=None,
                  last_message=None, queued_at=None):
    conv = Conversation(customer_id=customer.id, channel=channel, status=status, queue_id=queue.id,
                        assignee_id=getattr(assignee, "id", None), token=secrets.token_hex(8),
                        created_at=created, last_message_at=last_message or created, subject=key)
    db.session.add(conv)
    db.session.flush()
    if channel == "webchat":
        db.session.add(ChatSession(conversation_id=conv.id, name=customer.name, queued_at=queued_at or created,
                                   assigned_at=created if assignee else None))
    day.conversations[key] = conv
    return conv


def _case(day, key, customer, service, queue, *, created, due, assignee=None, status="new",
          first_due=None, first_responded=None, resolved=None, category="pothole"):
    case = Case(customer_id=customer.id, service_id=service.id, queue_id=queue.id, category=category,
                title=f"Case {key}", status=status, assignee_id=getattr(assignee, "id", None),
                created_at=created, sla_due_at=due, first_response_due_at=first_due,
                first_responded_at=first_responded, resolved_at=resolved)
    db.session.add(case)
    db.session.flush()
    case.reference = f"CAS-{case.id:06d}"
    day.cases[key] = case
    return case


def _contact(customer, channel, *, agent=None, start=None, end=None, occurred=None, outcome="resolved_first_time",
             category="pothole", case=None, conversation=None, direction="inbound"):
    contact = Contact(customer_id=customer.id, channel=channel, direction=direction, agent_id=getattr(agent, "id", None),
                      started_at=start, ended_at=end, occurred_at=occurred or start, outcome=outcome,
                      category=category, summary=channel, case_id=getattr(case, "id", None),
                      conversation_id=getattr(conversation, "id", None))
    db.session.add(contact)
    return contact


def build_scripted_day(make_user) -> ScriptedDay:
    """Make a known day of chats, calls, emails and cases, all timed against NOW."""
    day = ScriptedDay()
    highways = factories.service()  # with the highways_cases queue
    day.queues["cases"] = db.session.query(Queue).filter_by(code="highways_cases").one()
    for code, channel, target in (("chat", "webchat", 1440), ("email", "email", 60), ("phone", "phone", 1440)):
        queue = Queue(code=code, name=f"{channel.title()} queue", channel=channel, target_response_minutes=target)
        db.session.add(queue)
        day.queues[code] = queue
    ada = make_user("agent", name="Ada Agent")
    bob = make_user("agent", name="Bob Agent")
    cat = make_user("agent", name="Cat Agent")
    sue = make_user("supervisor", name="Sue Supervisor")
    ada.chat_capacity, bob.chat_capacity = 3, 2
    day.users.update(ada=ada, bob=bob, cat=cat, sue=sue)
    db.session.add(AgentPresence(user_id=ada.id, status="available", since=at("13:30")))
    db.session.add(AgentPresence(user_id=bob.id, status="busy", since=at("13:50")))
    db.session.add(AgentSocket(sid="ada-socket", user_id=ada.id, server_id="test", seen_at=NOW))
    db.session.flush()
    resident = factories.customer("Rita Resident", email="rita@example.org")
    day.customer = resident
    chat, email, cases = day.queues["chat"], day.queues["email"], day.queues["cases"]
    # Chats: two waiting (5 and 2 minutes), two held by Ada (one the resident left), one closed.
    _conversation(day, "c1", resident, "webchat", chat, "queued", created=at("13:50"), queued_at=at("13:55"))
    _conversation(day, "c2", resident, "webchat", chat, "queued", created=at("13:58"))
    _conversation(day, "c3", resident, "webchat", chat, "assigned", created=at("13:40"), assignee=ada)
    _conversation(day, "c4", resident, "webchat", chat, "ended", created=at("13:20"), assignee=ada)
    _conversation(day, "c5", resident, "webchat", chat, "closed", created=at("11:00"), assignee=ada)
    # Email: two unanswered (2 h over the 60-minute target; 30 min), two with Bob, one resolved.
    _conversation(day, "e1", resident, "email", email, "open", created=at("08:00"), last_message=at("12:00"))
    _conversation(day, "e2", resident, "email", email, "open", created=at("13:30"))
    _conversation(day, "e3", resident, "email", email, "assigned", created=at("10:00"), assignee=bob)
    _conversation(day, "e4", resident, "email", email, "waiting_customer", created=at("09:00"), assignee=bob)
    _conversation(day, "e5", resident, "email", email, "resolved", created=at("08:30"))
    # Cases: two unassigned (one due in 2 h: at risk), one assigned and overdue, one resolved.
    _case(day, "k1", resident, highways, cases, created=at("09:00"), due=at("12:00", days=3))
    _case(day, "k2", resident, highways, cases, created=at("10:00"), due=at("16:00"))
    _case(day, "k3", resident, highways, cases, created=at("08:00", days=-5), due=at("13:00"), assignee=bob,
          status="in_progress")
    _case(day, "k4", resident, highways, cases, created=at("08:00", days=-2), due=at("09:00", days=2),
          status="resolved", resolved=at("11:00"))
    # Contacts: Ada a 10-minute call and a 5-minute chat today, Bob one email (no handle time),
    # and a call of Ada's yesterday that today's figures must not count.
    _contact(resident, "phone", agent=ada, start=at("09:00"), end=at("09:10"))
    _contact(resident, "webchat", agent=ada, start=at("10:00"), end=at("10:05"), outcome="signposted")
    _contact(resident, "email", agent=bob, occurred=at("11:00"), outcome="case_raised")
    _contact(resident, "phone", agent=ada, start=at("15:00", days=-1), end=at("15:20", days=-1))
    db.session.commit()
    return day


@pytest.fixture
def fixed_clock(app):
    """Freeze the supervisor figures' clock at NOW."""
    app.config["CRM_FIXED_NOW"] = NOW
    yield NOW
    app.config.pop("CRM_FIXED_NOW", None)


@pytest.fixture
def scripted_day(app, make_user, fixed_clock):
    return build_scripted_day(make_user)


@pytest.fixture
def supervisor(make_user):
    return make_user("supervisor", name="Sam Supervisor")


@pytest.fixture
def supervisor_client(client, auth, supervisor):
    """A client signed in as a supervisor."""
    response = auth.login(supervisor)
    assert response.status_code == 302
    return client


@pytest.fixture
def supervisor_headers(supervisor, api_token):
    return api_token(supervisor)


@pytest.fixture
def live_crm(app, database_url):
    """A real server on the current backend (the app fixture made the schema); stopped after."""
    server = ServerProcess(database_url)
    yield server
    server.stop()

