"""Staff sides of web forms: an agent fills one for a caller; admins edit form definitions."""
import io
import json

from sqlalchemy import select

from crm.models import Attachment, AuditLog, Case, Contact, FormDefinition
from tests import factories
from tests.conftest import csrf_from
from tests.portal.conftest import png_bytes


def test_the_customer_page_links_to_assisted_forms(agent_client, pothole_form):
    caller = factories.customer(name="Caller Person", phone="07700900444")
    page = agent_client.get(f"/customers/{caller.id}").get_data(as_text=True)
    assert f"/customers/{caller.id}/forms" in page
    listing = agent_client.get(f"/customers/{caller.id}/forms").get_data(as_text=True)
    assert f"/customers/{caller.id}/forms/report-a-pothole" in listing


def test_an_agent_fills_a_form_for_a_caller_and_it_is_a_phone_contact(agent_client, agent, pothole_form, db):
    caller = factories.customer(name="Caller Person", phone="07700900444")
    url = f"/customers/{caller.id}/forms/report-a-pothole"
    page = agent_client.get(url).get_data(as_text=True)
    assert 'name="email"' not in page and "govuk-radios" in page
    token = csrf_from(page)
    bad = agent_client.post(url, data={"csrf_token": token, "location": "", "size": "Larger than a dinner plate"})
    assert bad.status_code == 400 and 'value="Larger than a dinner plate" checked' in bad.get_data(as_text=True)
    good = agent_client.post(url, data={
        "csrf_token": token, "location": "Station Road", "size": "Larger than a dinner plate",
        "started_at": "2026-01-01T09:00:00+00:00", "photo": (io.BytesIO(png_bytes()), "from-email.png")},
        content_type="multipart/form-data")
    assert good.status_code == 303 and good.headers["Location"].endswith(f"/customers/{caller.id}")
    case = db.session.scalar(select(Case))
    contact = db.session.scalar(select(Contact).where(Contact.case_id == case.id))
    assert case.customer_id == caller.id and case.source_channel == "phone"
    assert contact.channel == "phone" and contact.agent_id == agent.id and contact.handle_seconds > 0
    assert db.session.scalar(select(Attachment)).case_id == case.id
    assert case.reference in agent_client.get(f"/customers/{caller.id}").get_data(as_text=True)


def test_residents_and_other_roles_cannot_use_assisted_forms(client, make_user, auth, pothole_form):
    caller = factories.customer(name="Caller Person", phone="07700900444")
    assert client.get(f"/customers/{caller.id}/forms/report-a-pothole").status_code == 302  # to staff sign-in
    auth.login(make_user("service_officer"))
    assert client.get(f"/customers/{caller.id}/forms/report-a-pothole").status_code == 403
    assert client.get("/admin/forms").status_code == 403


def test_an_admin_creates_and_edits_a_form_definition(client, make_user, auth, highways, db):
    auth.login(make_user("admin"))
    page = client.get("/admin/forms/new").get_data(as_text=True)
    token = csrf_from(page)
    fields = [{"name": "where", "label": "Where is it?", "type": "text", "required": True, "location": True}]
    base = {"csrf_token": token, "title": "Report a blocked drain", "slug": "blocked-drain",
            "category": "pothole", "fields_json": json.dumps(fields), "published": "y"}
    broken = client.post("/admin/forms/new", data=dict(base, fields_json='[{"name": "Bad Name", "label": ""}]'))
    assert broken.status_code == 400 and "needs a label" in broken.get_data(as_text=True)
    assert client.post("/admin/forms/new", data=dict(base, fields_json="{not json")).status_code == 400
    assert client.post("/admin/forms/new", data=dict(base, slug="Not A Slug")).status_code == 400
    made = client.post("/admin/forms/new", data=base)
    assert made.status_code == 303
    definition = db.session.scalar(select(FormDefinition).where(FormDefinition.slug == "blocked-drain"))
    assert definition.service_id == highways.id and definition.fields == fields
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "form.create"))
    assert "Where is it?" in client.get("/forms/blocked-drain").get_data(as_text=True)
    again = client.post("/admin/forms/new", data=base)
    assert again.status_code == 400 and "already uses this address" in again.get_data(as_text=True)
    edit = client.post(f"/admin/forms/{definition.id}", data=dict(base, title="Report a drain", published=""))
    assert edit.status_code == 303
    db.session.expire_all()
    assert db.session.get(FormDefinition, definition.id).published is False
    assert client.get("/forms/blocked-drain").status_code == 404
    assert client.get("/admin/forms/99999").status_code == 404
