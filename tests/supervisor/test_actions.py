"""Supervisor actions: capacity, moving work, opening hours, banners; audited, refused to agents."""
from datetime import time, timedelta

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditLog, Banner, ChatSession, Conversation, OpeningHours, User, utcnow
from tests.conftest import csrf_from


def _audits(action):
    return db.session.scalars(select(AuditLog).where(AuditLog.action == action)).all()


def _csrf(client):
    return csrf_from(client.get("/console").get_data(as_text=True))


def test_supervisor_changes_an_agents_capacity_audited(app, scripted_day, supervisor_headers, supervisor):
    ada = scripted_day.users["ada"]
    response = app.test_client().patch(f"/api/v1/supervisor/agents/{ada.id}", json={"chat_capacity": 5},
                                       headers=supervisor_headers)
    assert response.status_code == 200, response.get_json()
    db.session.expire_all()
    assert db.session.get(User, ada.id).chat_capacity == 5
    (entry,) = _audits("supervisor.set_capacity")
    assert (entry.actor_id, entry.target_id, entry.details) == (supervisor.id, str(ada.id), {"before": 3, "after": 5})


@pytest.mark.parametrize("body", [{"chat_capacity": -1}, {"chat_capacity": 99}, {"chat_capacity": "3"}, {}, {"x": 1}])
def test_bad_capacity_is_refused(app, scripted_day, supervisor_headers, body):
    ada = scripted_day.users["ada"]
    response = app.test_client().patch(f"/api/v1/supervisor/agents/{ada.id}", json=body, headers=supervisor_headers)
    assert response.status_code == 422


def test_capacity_of_a_stranger_is_404(app, supervisor_headers):
    response = app.test_client().patch("/api/v1/supervisor/agents/9999", json={"chat_capacity": 2},
                                       headers=supervisor_headers)
    assert response.status_code == 404


def test_moving_a_chat_to_another_agent_and_back_to_a_queue(app, scripted_day, supervisor_headers):
    chat, bob = scripted_day.conversations["c1"], scripted_day.users["bob"]
    client = app.test_client()
    response = client.post(f"/api/v1/supervisor/conversations/{chat.id}/move", json={"agent_id": bob.id},
                           headers=supervisor_headers)
    assert response.status_code == 200, response.get_json()
    db.session.expire_all()
    moved = db.session.get(Conversation, chat.id)
    assert (moved.status, moved.assignee_id) == ("assigned", bob.id)
    response = client.post(f"/api/v1/supervisor/conversations/{chat.id}/move", json={"queue": "chat"},
                           headers=supervisor_headers)
    assert response.status_code == 200
    db.session.expire_all()
    moved = db.session.get(Conversation, chat.id)
    assert (moved.status, moved.assignee_id) == ("queued", None)
    assert db.session.get(ChatSession, chat.id).priority == 1  # back at the head of the queue
    assert len(_audits("supervisor.move_conversation")) == 2


def test_moving_an_email_to_another_queue(app, scripted_day, supervisor_headers):
    from crm.models import Queue

    db.session.add(Queue(code="email_waste", name="Waste email", channel="email"))
    db.session.commit()
    email = scripted_day.conversations["e3"]
    response = app.test_client().post(f"/api/v1/supervisor/conversations/{email.id}/move",
                                      json={"queue": "email_waste"}, headers=supervisor_headers)
    assert response.status_code == 200
    db.session.expire_all()
    moved = db.session.get(Conversation, email.id)
    assert (moved.queue.code, moved.assignee_id, moved.status) == ("email_waste", None, "open")


@pytest.mark.parametrize("key, body, status", [
    ("c1", {"queue": "email"}, 422),  # a chat onto an email queue
    ("c1", {}, 422),
    ("c1", {"agent_id": 1, "queue": "chat"}, 422),
    ("c5", {"queue": "chat"}, 409),  # finished
    ("c1", {"queue": "nowhere"}, 404),
    ("c1", {"agent_id": 999999}, 404),
])
def test_bad_moves_are_refused(app, scripted_day, supervisor_headers, key, body, status):
    chat = scripted_day.conversations[key]
    response = app.test_client().post(f"/api/v1/supervisor/conversations/{chat.id}/move", json=body,
                                      headers=supervisor_headers)
    assert response.status_code == status, response.get_json()


def test_opening_hours_are_stored_where_webchat_reads_them(app, supervisor_client):
    form = {"csrf_token": _csrf(supervisor_client)}
    for day in range(5):
        form[f"opens{day}"], form[f"closes{day}"] = "08:30", "18:00"
    form["opens5"], form["closes5"] = "09:00", "12:30"
    response = supervisor_client.post("/supervisor/opening-hours", data=form)
    assert response.status_code == 302
    rows = db.session.scalars(select(OpeningHours).order_by(OpeningHours.weekday)).all()
    assert [(r.weekday, r.opens, r.closes) for r in rows] == \
        [(d, time(8, 30), time(18)) for d in range(5)] + [(5, time(9), time(12, 30))]
    assert len(_audits("supervisor.set_opening_hours")) == 1
    from crm.webchat import hours  # the webchat area reads the same rows

    assert hours.next_opening() is not None


@pytest.mark.parametrize("opens, closes", [("18:00", "09:00"), ("9am", "5pm"), ("09:00", "")])
def test_bad_opening_hours_are_refused(app, supervisor_client, opens, closes):
    form = {"csrf_token": _csrf(supervisor_client), "opens0": opens, "closes0": closes}
    assert supervisor_client.post("/supervisor/opening-hours", data=form).status_code == 422
    assert db.session.scalars(select(OpeningHours)).all() == []


def test_opening_hours_over_the_api(app, supervisor_headers):
    client = app.test_client()
    hours = {"hours": [{"weekday": 0, "opens": "09:00", "closes": "17:00"}]}
    assert client.put("/api/v1/supervisor/opening-hours", json=hours, headers=supervisor_headers).status_code == 200
    bad = {"hours": [{"weekday": 0, "opens": "09:00", "closes": "17:00"}, {"weekday": 0, "opens": "18:00", "closes": "19:00"}]}
    assert client.put("/api/v1/supervisor/opening-hours", json=bad, headers=supervisor_headers).status_code == 422
    assert client.put("/api/v1/supervisor/opening-hours", json={"hours": [{"weekday": 9, "opens": "09:00", "closes": "10:00"}]},
                      headers=supervisor_headers).status_code == 422


def test_a_banner_reaches_agents_and_comes_down(app, supervisor_client, agent_client_2):
    response = supervisor_client.post("/supervisor/banners", data={
        "csrf_token": _csrf(supervisor_client), "message": "Bins not collected in Keswick today", "public": "y"})
    assert response.status_code == 302
    banner = db.session.scalar(select(Banner))
    assert banner.public
    assert "Bins not collected in Keswick today" in agent_client_2.get("/console").get_data(as_text=True)
    listed = agent_client_2.get("/api/v1/banners").get_json()["items"]
    assert [b["message"] for b in listed] == ["Bins not collected in Keswick today"]
    response = supervisor_client.post(f"/supervisor/banners/{banner.id}/clear",
                                      data={"csrf_token": _csrf(supervisor_client)})
    assert response.status_code == 302
    assert "Keswick" not in agent_client_2.get("/console").get_data(as_text=True)
    assert [e.action for e in db.session.scalars(select(AuditLog).where(AuditLog.target_type == "banner"))] == \
        ["supervisor.post_banner", "supervisor.clear_banner"]


def test_an_expired_banner_is_not_shown(app, supervisor, supervisor_headers):
    from crm.supervisor.figures import active_banners

    db.session.add(Banner(message="old news", created_by_id=supervisor.id,
                          expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert active_banners() == []
    response = app.test_client().post("/api/v1/banners", json={"message": "", "public": True}, headers=supervisor_headers)
    assert response.status_code == 422
    response = app.test_client().post("/api/v1/banners", json={"message": "x" * 301}, headers=supervisor_headers)
    assert response.status_code == 422


def test_agents_are_refused_every_action(app, scripted_day, agent_headers, agent_client):
    client = app.test_client()
    ada, chat = scripted_day.users["ada"], scripted_day.conversations["c1"]
    assert client.patch(f"/api/v1/supervisor/agents/{ada.id}", json={"chat_capacity": 9},
                        headers=agent_headers).status_code == 403
    assert client.post(f"/api/v1/supervisor/conversations/{chat.id}/move", json={"queue": "chat"},
                       headers=agent_headers).status_code == 403
    assert client.post("/api/v1/banners", json={"message": "hi"}, headers=agent_headers).status_code == 403
    assert client.put("/api/v1/supervisor/opening-hours", json={"hours": []}, headers=agent_headers).status_code == 403
    token = _csrf(agent_client)
    assert agent_client.post(f"/supervisor/agents/{ada.id}/capacity",
                             data={"csrf_token": token, "chat_capacity": "9"}).status_code == 403
    assert agent_client.post("/supervisor/banners", data={"csrf_token": token, "message": "hi"}).status_code == 403
    assert db.session.get(User, ada.id).chat_capacity == 3
    assert db.session.scalars(select(AuditLog).where(AuditLog.action.like("supervisor.%"))).all() == []


def test_dashboard_forms_refuse_bad_input_with_4xx(app, scripted_day, supervisor_client):
    ada = scripted_day.users["ada"]
    token = _csrf(supervisor_client)
    assert supervisor_client.post(f"/supervisor/agents/{ada.id}/capacity",
                                  data={"csrf_token": token, "chat_capacity": "lots"}).status_code == 422
    assert supervisor_client.post("/supervisor/conversations/move",
                                  data={"csrf_token": token, "conversation_id": "1", "target": "moon"}).status_code == 422
    assert supervisor_client.post("/supervisor/banners", data={"csrf_token": token, "message": " "}).status_code == 422
    assert supervisor_client.post("/supervisor/banners", data={"message": "no token"}).status_code == 400


@pytest.fixture
def agent_client_2(app, make_user, auth):
    """A second, separate client signed in as an agent."""
    from tests.conftest import AuthActions

    client = app.test_client()
    agent = make_user("agent", name="Second Agent")
    assert AuthActions(client).login(agent).status_code == 302
    return client


def test_only_public_banners_reach_resident_pages(app, supervisor):
    from flask import render_template

    db.session.add_all([Banner(message="Bins not collected in Keswick today", public=True, created_by_id=supervisor.id),
                        Banner(message="Staff only: system slow", public=False, created_by_id=supervisor.id)])
    db.session.commit()
    with app.test_request_context("/chat"):
        html = render_template("supervisor/_public_banners.html")
    assert "Keswick" in html and "Staff only" not in html


def test_the_chat_page_shows_public_banners(app, supervisor):
    db.session.add(Banner(message="Bins not collected in Keswick today", public=True, created_by_id=supervisor.id))
    db.session.add(Banner(message="Staff only: system slow", public=False, created_by_id=supervisor.id))
    db.session.commit()
    html = app.test_client().get("/chat").get_data(as_text=True)
    assert "Bins not collected in Keswick today" in html and "Staff only" not in html
