"""Topic/skill matching: a real server process, real python-socketio clients, skills set by a supervisor."""
import time

from sqlalchemy import select

from crm.extensions import db
from crm.models import AgentSkill, AuditLog, ChatSession, Conversation
from tests.conftest import csrf_from
from tests.webchat.conftest import agent_with_token


def give_skills(user, *topics):
    db.session.add_all([AgentSkill(user_id=user.id, topic=t) for t in topics])
    db.session.commit()


def start(client, name, topic=None):
    ack = client.call("start", {"name": name, **({"topic": topic} if topic else {})})
    assert "error" not in ack, ack
    return ack["conversation_id"]


def holder_of(conversation_id):
    db.session.expire_all()
    return db.session.get(Conversation, conversation_id).assignee_id


def test_a_topic_with_skilled_agents_goes_only_to_them_in_fifo_order(server, clients, make_user, api_token):
    generalist, g_token = agent_with_token(make_user, api_token, capacity=3, name="Gina Generalist")
    expert, e_token = agent_with_token(make_user, api_token, capacity=2, name="Tariq Tax")
    give_skills(expert, "council_tax")
    g_client = clients(server.url, "/agent", auth={"token": g_token})
    e_client = clients(server.url, "/agent", auth={"token": e_token})

    residents = {name: clients(server.url, "/webchat") for name in ("tax1", "bins", "tax2", "tax3")}
    tax1 = start(residents["tax1"], "First Taxpayer", "council_tax")
    assert e_client.expect("assigned")["conversation_id"] == tax1
    bins = start(residents["bins"], "Bin Person", "waste")  # nobody has "waste" as a skill: anyone
    tax2 = start(residents["tax2"], "Second Taxpayer", "council_tax")
    tax3 = start(residents["tax3"], "Third Taxpayer", "council_tax")

    assert e_client.expect("assigned")["conversation_id"] == tax2  # FIFO among the skilled topic
    assert g_client.expect("assigned")["conversation_id"] == bins  # the generalist had the least load
    # The expert is full; the generalist has room, but tax3 waits for someone with the skill.
    assert residents["tax3"].expect("status", lambda d: d["state"] == "queued")["position"] == 1
    time.sleep(1.5)  # a sweep or two: still not given to the generalist
    assert holder_of(tax3) is None
    assert [e for e, d in g_client.drain() if e == "assigned"] == []

    assert e_client.call("close", {"conversation_id": tax1, "outcome": "resolved_first_time"})["ok"] is True
    assert e_client.expect("assigned")["conversation_id"] == tax3
    assert residents["tax3"].expect("status", lambda d: d["state"] == "assigned")["agent_name"] == "Tariq Tax"
    assert (holder_of(tax1), holder_of(bins), holder_of(tax2), holder_of(tax3)) == \
        (expert.id, generalist.id, expert.id, expert.id)


def test_a_skilled_topic_goes_to_anyone_after_the_fallback_wait(app, server_factory, clients, make_user, api_token):
    server = server_factory(WEBCHAT_SKILL_FALLBACK_SECONDS="2")
    absent_expert, _ = agent_with_token(make_user, api_token, name="Asha Away")
    give_skills(absent_expert, "adult_social_care")  # skilled, but not connected
    generalist, token = agent_with_token(make_user, api_token, name="Gina Generalist")
    g_client = clients(server.url, "/agent", auth={"token": token})
    resident = clients(server.url, "/webchat")

    chat = start(resident, "Carer", "adult_social_care")
    assert resident.expect("status", lambda d: d["state"] == "queued")["position"] == 1
    assert g_client.expect("assigned")["conversation_id"] == chat
    assert resident.expect("status", lambda d: d["state"] == "assigned")["agent_name"] == "Gina Generalist"
    db.session.expire_all()
    session = db.session.get(ChatSession, chat)
    assert (session.assigned_at - session.queued_at).total_seconds() >= 2  # not before the wait


def test_without_skills_configured_assignment_ignores_topics(server, clients, make_user, api_token):
    _, token = agent_with_token(make_user, api_token, name="Only Agent")
    agent = clients(server.url, "/agent", auth={"token": token})
    chat = start(clients(server.url, "/webchat"), "Reader", "libraries")
    assert agent.expect("assigned")["conversation_id"] == chat


def test_supervisor_sets_skills_over_the_api_audited_and_validated(app, make_user, api_token):
    supervisor = make_user("supervisor")
    agent = make_user("agent")
    client = app.test_client()
    headers = api_token(supervisor)
    url = f"/api/v1/supervisor/agents/{agent.id}/skills"

    response = client.put(url, json={"skills": ["waste", "council_tax", "waste"]}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"id": agent.id, "skills": ["council_tax", "waste"]}
    assert client.put(url, json={"skills": ["libraries"]}, headers=headers).get_json()["skills"] == ["libraries"]
    db.session.expire_all()
    assert db.session.scalars(select(AgentSkill.topic).where(AgentSkill.user_id == agent.id)).all() == ["libraries"]
    audits = db.session.scalars(select(AuditLog).where(AuditLog.action == "supervisor.set_skills")
                                .order_by(AuditLog.id)).all()
    assert [a.details for a in audits] == [{"before": [], "after": ["council_tax", "waste"]},
                                           {"before": ["council_tax", "waste"], "after": ["libraries"]}]

    for bad in ({}, {"skills": "waste"}, {"skills": [""]}, {"skills": ["no spaces"]}, {"skills": [3]},
                {"skills": ["x" * 61]}, {"skills": []} | {"extra": 1}):
        assert client.put(url, json=bad, headers=headers).status_code == 422, bad
    assert client.put("/api/v1/supervisor/agents/9999/skills", json={"skills": []}, headers=headers).status_code == 404
    assert client.put(url, json={"skills": []}, headers=api_token(make_user("agent"))).status_code == 403
    assert client.put(url, json={"skills": []}, headers=headers).get_json()["skills"] == []


def test_supervisor_dashboard_shows_and_edits_skills(app, client, auth, make_user):
    supervisor = make_user("supervisor")
    agent = make_user("agent", name="Sam Skilful")
    give_skills(agent, "highways")
    assert auth.login(supervisor).status_code == 302
    page = client.get("/supervisor/").get_data(as_text=True)
    assert f'id="skill-{agent.id}-highways" name="skills" value="highways" checked' in page
    assert f'id="skill-{agent.id}-waste" name="skills" value="waste">' in page

    response = client.post(f"/supervisor/agents/{agent.id}/skills",
                           data={"csrf_token": csrf_from(page), "skills": ["waste", "libraries"]})
    assert response.status_code == 302
    db.session.expire_all()
    assert sorted(db.session.scalars(select(AgentSkill.topic).where(AgentSkill.user_id == agent.id))) == \
        ["libraries", "waste"]
    assert client.post(f"/supervisor/agents/{agent.id}/skills",
                       data={"csrf_token": csrf_from(page), "skills": ["<b>"]}).status_code == 422
