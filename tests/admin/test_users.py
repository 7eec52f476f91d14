"""Admins manage staff users and their API tokens from the admin pages."""
from sqlalchemy import select

from crm.extensions import db
from crm.models import ApiToken, User
from tests.conftest import csrf_from


def test_admin_creates_a_user_and_changes_their_role(client, auth, make_user):
    auth.login(make_user("admin"))
    page = client.get("/admin/users").get_data(as_text=True)
    response = client.post("/admin/users", data={"csrf_token": csrf_from(page), "email": "new@test.example",
                                                 "name": "New Agent", "role": "agent",
                                                 "password": "long-enough-pass"})
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "new@test.example"))
    page = client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    client.post(f"/admin/users/{user.id}", data={"csrf_token": csrf_from(page), "name": "New Supervisor",
                                                 "role": "supervisor", "service_id": "0", "chat_capacity": "4",
                                                 "active": "y"})
    db.session.refresh(user)
    assert (user.role, user.name, user.chat_capacity) == ("supervisor", "New Supervisor", 4)


def test_admin_issues_and_revokes_a_token(client, auth, make_user):
    auth.login(make_user("admin"))
    target = make_user("agent")
    page = client.get(f"/admin/users/{target.id}").get_data(as_text=True)
    shown = client.post(f"/admin/users/{target.id}/tokens", data={"csrf_token": csrf_from(page),
                                                                  "label": "script"}).get_data(as_text=True)
    token = shown.split('<code class="token">')[1].split("<")[0]
    assert client.get("/api/v1/customers", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    record = db.session.scalar(select(ApiToken).where(ApiToken.user_id == target.id))
    client.post(f"/admin/tokens/{record.id}/revoke", data={"csrf_token": csrf_from(shown)})
    assert client.get("/api/v1/customers", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_admin_cannot_demote_themselves(client, auth, make_user):
    me = make_user("admin")
    auth.login(me)
    page = client.get(f"/admin/users/{me.id}").get_data(as_text=True)
    client.post(f"/admin/users/{me.id}", data={"csrf_token": csrf_from(page), "name": me.name, "role": "agent",
                                               "service_id": "0", "chat_capacity": "3", "active": "y"})
    db.session.refresh(me)
    assert me.role == "admin"


def test_bad_new_user_input_keeps_the_form(client, auth, make_user):
    auth.login(make_user("admin"))
    page = client.get("/admin/users").get_data(as_text=True)
    response = client.post("/admin/users", data={"csrf_token": csrf_from(page), "email": "bad",
                                                 "name": "Kept Name", "role": "agent", "password": "short"})
    assert response.status_code in (400, 422) and "Kept Name" in response.get_data(as_text=True)
