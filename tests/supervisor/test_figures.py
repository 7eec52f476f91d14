"""Live figures against a scripted day: per queue, per channel and per agent."""
from crm.supervisor.figures import agent_figures, channel_figures, dashboard_snapshot, queue_figures

from .conftest import NOW


def _by_code(items):
    return {q["code"]: q for q in items}


def test_queue_figures_count_the_scripted_day(app, scripted_day):
    queues = _by_code(queue_figures(NOW))
    chat, email, cases, phone = queues["chat"], queues["email"], queues["highways_cases"], queues["phone"]
    # Two chats queued at 13:55 and 13:58; Ada holds one live chat and one the resident left.
    assert (chat["waiting"], chat["oldest_wait_seconds"], chat["in_progress"]) == (2, 300, 2)
    # Ada is available, connected and has one free slot of three; Bob is busy.
    assert chat["agents_available"] == 1
    # Two unanswered emails, waiting since 12:00 (over the 60-minute target) and 13:30.
    assert (email["waiting"], email["oldest_wait_seconds"], email["over_target"], email["in_progress"]) == \
        (2, 7200, 1, 2)
    # Cases: k1 and k2 unassigned (k1 since 09:00), k3 with Bob; k2 due at 16:00 is at risk, k3 breached.
    assert (cases["waiting"], cases["oldest_wait_seconds"], cases["in_progress"]) == (2, 5 * 3600, 1)
    assert (cases["sla_at_risk"], cases["sla_breached"]) == (1, 1)
    assert cases["agents_available"] == 0  # nobody of the Highways service is on presence
    assert (phone["waiting"], phone["in_progress"], phone["agents_available"]) == (0, 0, 1)


def test_channel_figures_sum_their_queues(app, scripted_day):
    channels = {c["channel"]: c for c in channel_figures(queue_figures(NOW))}
    assert channels["webchat"]["waiting"] == 2
    assert channels["email"]["over_target"] == 1
    assert channels["cases"]["sla_breached"] == 1


def test_agent_figures_show_presence_time_in_state_chats_and_handle_time(app, scripted_day):
    agents = {a["name"]: a for a in agent_figures(NOW)}
    ada, bob, cat = agents["Ada Agent"], agents["Bob Agent"], agents["Cat Agent"]
    assert (ada["presence"], ada["seconds_in_state"]) == ("available", 1800)
    assert (ada["chats_in_hand"], ada["chat_capacity"]) == (2, 3)
    # Today only: the 10-minute call and the 5-minute chat, not yesterday's call.
    assert (ada["contacts_today"], ada["handle_seconds_today"]) == (2, 900)
    assert (bob["presence"], bob["seconds_in_state"], bob["emails_in_hand"]) == ("busy", 600, 2)
    assert (bob["contacts_today"], bob["handle_seconds_today"]) == (1, 0)
    assert (cat["presence"], cat["seconds_in_state"]) == ("offline", 0)
    assert "Sue Supervisor" in agents  # supervisors take work too


def test_get_queues_equals_the_figures_and_the_push(app, scripted_day, supervisor_headers):
    response = app.test_client().get("/api/v1/queues", headers=supervisor_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["items"] == queue_figures(NOW)
    assert body["items"] == dashboard_snapshot(NOW)["items"]
    for row in body["items"]:
        assert {"waiting", "oldest_wait_seconds", "in_progress", "agents_available", "sla_at_risk"} <= set(row)


def test_agents_may_read_queues_but_strangers_may_not(app, scripted_day, agent_headers):
    client = app.test_client()
    assert client.get("/api/v1/queues", headers=agent_headers).status_code == 200
    assert client.get("/api/v1/queues").status_code == 401


def test_dashboard_page_shows_the_figures(app, scripted_day, supervisor_client):
    page = supervisor_client.get("/supervisor/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-queue="email"' in html and 'data-seconds="7200"' in html
    assert "Ada Agent" in html and "2 / 3" in html


def test_dashboard_refuses_agents(app, agent_client):
    assert agent_client.get("/supervisor/").status_code == 403
    assert agent_client.get("/supervisor/reports").status_code == 403


def test_presence_changes_are_recorded_in_the_history(app, scripted_day):
    from sqlalchemy import select

    from crm.extensions import db
    from crm.models import AgentPresence, AgentStateChange

    ada = scripted_day.users["ada"]
    presence = db.session.get(AgentPresence, ada.id)
    presence.status = "away"
    db.session.commit()
    presence.since = presence.since  # unchanged status: no new row
    db.session.commit()
    states = db.session.execute(
        select(AgentStateChange.status).where(AgentStateChange.user_id == ada.id).order_by(AgentStateChange.id)
    ).scalars().all()
    assert states == ["available", "away"]


def test_only_a_change_to_what_the_figures_read_asks_for_a_push(app, scripted_day):
    from crm.extensions import db
    from crm.supervisor.push import figures_changed

    asked = []
    receiver = lambda *_a, **_kw: asked.append(True)  # noqa: E731
    figures_changed.connect(receiver)
    try:
        chat = scripted_day.conversations["c3"]
        chat.last_seq += 1  # a chat message moves no figure
        db.session.commit()
        chat.status = chat.status  # set, but to the value it had
        db.session.commit()
        assert asked == []
        chat.status = "ended"
        db.session.commit()
        assert asked == [True]
    finally:
        figures_changed.disconnect(receiver)


def test_presences_changed_in_the_flush_of_a_figure_moving_change_each_get_their_history(app, scripted_day):
    from sqlalchemy import select

    from crm.extensions import db
    from crm.models import AgentPresence, AgentStateChange

    ada, bob = scripted_day.users["ada"], scripted_day.users["bob"]
    scripted_day.conversations["c1"].status = "assigned"  # seen before or after the presences: both must count
    db.session.get(AgentPresence, ada.id).status = "away"
    db.session.get(AgentPresence, bob.id).status = "available"
    db.session.commit()
    latest = {user_id: status for user_id, status in db.session.execute(
        select(AgentStateChange.user_id, AgentStateChange.status).order_by(AgentStateChange.id))}
    assert latest[ada.id] == "away" and latest[bob.id] == "available"
