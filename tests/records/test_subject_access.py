"""Subject access: one ZIP with everything held about a person (merged records too), nothing of anyone else's."""
import io
import json
import zipfile

from crm.extensions import db
from crm.models import AuditLog
from sqlalchemy import select

from .history import EMAIL, NAME, OLD_EMAIL, STRANGER, STRANGER_EMAIL, THIRD_PARTY, build_history


def _zip_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "\n".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist())


def test_command_exports_every_channel_of_a_merged_history_and_nothing_of_anyone_else(
        app, client, agent, agent_headers, runner, tmp_path):
    customer_id, _ = build_history(client, agent, agent_headers)
    out = tmp_path / "sar.zip"
    result = runner.invoke(args=["crm", "subject-access", str(customer_id), "--out", str(out)])
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["customer_id"] == customer_id and last["file"] == str(out)
    items = last["items"]
    assert items["customers"] == 2  # the record and the one merged into it
    assert items["identities"] == 4  # two emails, a phone, the portal sign-in
    assert items["addresses"] == 1 and items["resident_accounts"] == 1
    assert items["contacts"] == 5  # email, phone, web form, Open311, webchat
    assert items["conversations"] == 3 and items["webchat_sessions"] == 1  # the email thread, the update email, the chat
    assert items["cases"] == 3 and items["open311_requests"] == 1
    assert items["inbound_emails"] == 1 and items["attachments"] == 2  # the emailed picture and the chat photo

    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        data = json.loads(archive.read("data.json"))
        manifest = json.loads(archive.read("manifest.json"))
        page = archive.read("index.html").decode()
    assert {"data.json", "index.html", "manifest.json"} <= set(names)
    assert any(n.startswith("attachments/") and n.endswith("photo.jpg") for n in names)
    assert any(n.startswith("attachments/") and n.endswith("bin.png") for n in names)
    assert any(n.startswith("emails/") and n.endswith(".eml") for n in names)
    assert manifest["items"] == items and manifest["merged_customer_ids"]
    assert {f["name"] for f in manifest["files"]} == set(names) - {"manifest.json"}
    sections = data["sections"]
    assert {c["channel"] for c in sections["contacts"]} == {"email", "phone", "web_form", "open311", "webchat"}
    assert {i["value"] for i in sections["identities"]} >= {EMAIL, OLD_EMAIL, "+447700900123"}
    assert sections["webchat_sessions"][0]["rating"] == 5
    assert sections["resident_accounts"][0]["email_updates"] is False
    assert "password_hash" not in sections["resident_accounts"][0]
    # Internal notes are there, flagged for review, in the data and in the readable bundle.
    notes = [e for e in sections["case_events"] if e.get("internal_fields")]
    assert notes and THIRD_PARTY in notes[0]["body"]
    assert [m for m in sections["messages"] if m.get("internal_fields")][0]["internal"] is True
    assert "INTERNAL" in page and NAME in page
    text = _zip_text(out.read_bytes())
    assert STRANGER not in text and STRANGER_EMAIL not in text and "Stranger's call" not in text
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "records.subject_access"))
    assert entry.target_id == str(customer_id) and entry.details["items"] == items


def test_command_that_cannot_write_its_file_says_so_and_records_no_disclosure(app, client, agent, agent_headers,
                                                                              runner, tmp_path):
    customer_id, _ = build_history(client, agent, agent_headers)
    out = tmp_path / "no-such-folder" / "sar.zip"
    result = runner.invoke(args=["crm", "subject-access", str(customer_id), "--out", str(out)])
    assert result.exit_code == 1
    assert f"cannot write {out}: No such file or directory" in result.output
    assert "Traceback" not in result.output
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "records.subject_access")) is None


def test_api_export_applies_the_officers_redaction_and_records_it(app, client, agent, agent_headers, officer_headers):
    customer_id, _ = build_history(client, agent, agent_headers)
    response = client.post(f"/api/v1/customers/{customer_id}/subject-access", headers=officer_headers,
                           json={"reference": "SAR-2026-001", "mask": [THIRD_PARTY], "without_internal": True})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/zip"
    text = _zip_text(response.data)
    assert THIRD_PARTY not in text and "[redacted]" in text
    assert "Philippa sounded upset" not in text  # internal note left out
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "records.subject_access"))
    assert entry.details["request_reference"] == "SAR-2026-001"
    assert entry.details["redaction"] == {"excluded": [], "masked_terms": 1, "internal_dropped": True}
    assert THIRD_PARTY not in json.dumps(entry.details)


def test_api_export_refuses_a_malformed_exclusion_and_an_unknown_customer(app, client, officer_headers):
    response = client.post("/api/v1/customers/999/subject-access", headers=officer_headers, json={})
    assert response.status_code == 404
    from tests import factories

    person = factories.customer()
    response = client.post(f"/api/v1/customers/{person.id}/subject-access", headers=officer_headers,
                           json={"exclude": ["nonsense"]})
    assert response.status_code == 422 and response.get_json()["error"]["fields"]["exclude"]


def test_staff_page_downloads_the_export(app, client, auth, officer):
    from tests import factories
    from tests.conftest import csrf_from

    person = factories.customer(name="Page Person", email="page@example.org")
    auth.login(officer)
    page = client.get(f"/records/customers/{person.id}")
    assert page.status_code == 200 and "Subject access export" in page.get_data(as_text=True)
    response = client.post(f"/records/customers/{person.id}/export", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "reference": "SAR-9", "exclude": "", "mask": ""})
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "page@example.org" in _zip_text(response.data)
