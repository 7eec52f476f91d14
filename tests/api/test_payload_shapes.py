"""The JSON a client reads, pinned byte for byte: a case with its history, a work list, a timeline, services, a
logged contact, banners, a possible duplicate pair and audit trail entries. Each is dumped by its `*Out` schema; a change to a shape shows up here first."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select, update

from crm.audit import audit
from crm.cases import service as cases
from crm.customers.identity import add_address, add_identity, resolve_customer
from crm.extensions import db
from crm.models import AuditLog, Banner, Case, CaseEvent, Contact, Customer, PossibleDuplicate, User
from tests import factories

AT = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
DUE = datetime(2026, 3, 4, 1, 30, tzinfo=timezone.utc)


@pytest.fixture
def world(app, api_token):
    """A worked case, a duplicate merged into it, a logged call and a banner, every time fixed."""
    highways = factories.service("highways", "Highways",
                                 categories=(("pothole", "Pothole"), ("street_light", "Street light")))
    officer = factories.user("service_officer", password=None, name="Owen Officer", service_id=highways.id)
    supervisor = factories.user("supervisor", password=None, name="Sue Visor")
    jane = factories.customer("Jane Resident", email="jane@example.org")
    kept = factories.case(jane, title="Pothole on Main Street", description="Deep, by the bus stop",
                          location_address="4 Main Street, Carlisle", latitude=54.89, longitude=-2.93)
    duplicate = factories.case(jane, title="Hole in the road")
    cases.assign_case(kept, officer, supervisor)
    cases.change_status(kept, "in_progress", supervisor, reason="crew booked")
    cases.add_note(kept, "Crew booked for Tuesday", supervisor)
    cases.post_public_update(kept, "We will fill it on Tuesday", supervisor)
    cases.merge_cases(duplicate, kept, supervisor, "same hole")
    db.session.commit()
    headers = api_token(supervisor)
    return {"kept": kept, "duplicate": duplicate, "jane": jane, "headers": headers}


def fix_times():
    """Set every stored instant to a known one, so the answers can be compared as text."""
    db.session.execute(update(Case).values(created_at=AT, sla_due_at=DUE, first_response_due_at=DUE,
                                           first_responded_at=AT))
    db.session.execute(update(Case).where(Case.resolved_at.is_not(None)).values(resolved_at=AT))
    db.session.execute(update(Case).where(Case.closed_at.is_not(None)).values(closed_at=AT))
    db.session.execute(update(CaseEvent).values(occurred_at=AT))
    db.session.execute(update(Contact).values(occurred_at=AT))
    db.session.execute(update(Banner).values(created_at=AT))
    db.session.commit()
    db.session.expire_all()


def text_of(response) -> str:
    assert response.status_code < 300, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def assert_pinned(answer: str, pinned: str, **values):
    """Compare an answer with its pinned text, whose {name} marks stand for ids and cursors of this run."""
    for name, value in values.items():
        pinned = pinned.replace("{" + name + "}", str(value))
    assert answer == pinned


def test_a_case_with_its_history(client, world):
    fix_times()
    kept = world["kept"]
    answer = text_of(client.get(f"/api/v1/cases/{kept.reference}", headers=world["headers"]))
    routed = next(e.body for e in kept.events if e.kind == "routed")  # names today's due date
    assert_pinned(answer, CASE, ref=kept.reference, dup=world["duplicate"].reference, routed=routed)
    merged = text_of(client.get(f"/api/v1/cases/{world['duplicate'].reference}", headers=world["headers"]))
    assert f'"merged_into":"{kept.reference}"' in merged


def test_a_work_list(client, world):
    fix_times()
    answer = text_of(client.get("/api/v1/cases?service=highways", headers=world["headers"]))
    assert_pinned(answer, WORK_LIST, ref=world["kept"].reference)


def test_a_timeline(client, world):
    logged = client.post("/api/v1/contacts", headers=world["headers"], json={
        "channel": "phone", "customer_id": world["jane"].id, "category": "pothole", "notes": "Rang about the hole",
        "outcome": "signposted", "started_at": "2026-03-02T09:25:00+00:00", "ended_at": "2026-03-02T09:29:30+00:00"})
    assert logged.status_code == 201
    fix_times()
    answer = text_of(client.get(f"/api/v1/customers/{world['jane'].id}/timeline?limit=3", headers=world["headers"]))
    assert_pinned(answer, TIMELINE, ref=world["kept"].reference, dup=world["duplicate"].reference)


def test_a_logged_contact(client, world):
    logged = client.post("/api/v1/contacts", headers=world["headers"], json={
        "channel": "phone", "customer_id": world["jane"].id, "category": "pothole", "notes": "Rang about the hole",
        "outcome": "case_raised", "started_at": "2026-03-02T09:25:00+00:00", "ended_at": "2026-03-02T09:29:30+00:00",
        "case": {"service": "highways", "category": "street_light", "title": "Light out"}})
    answer = text_of(logged)
    contact = db.session.get(Contact, logged.json["id"])
    assert_pinned(answer, CONTACT, ref=contact.case.reference)


def test_services_and_banners(client, world):
    assert_pinned(text_of(client.get("/api/v1/services", headers=world["headers"])), SERVICES)
    posted = client.post("/api/v1/banners", headers=world["headers"], json={
        "message": "Phones down until noon", "public": True, "expires_at": "2099-01-01T12:00:00+00:00"})
    assert posted.status_code == 201
    fix_times()
    assert_pinned(text_of(client.get("/api/v1/banners", headers=world["headers"])), BANNERS)


def test_a_possible_duplicate_pair(client, world):
    add_identity(world["jane"], "phone", "+447700900002", verified=True, source="staff")
    add_address(world["jane"], line1="4 Main Street", town="Carlisle", postcode="CA3 8QG")
    db.session.commit()
    claimant = resolve_customer("Mallory Smith", "mallory@example.net", "07700 900002", source="chat")
    db.session.commit()
    db.session.execute(update(Customer).values(created_at=AT))
    db.session.execute(update(PossibleDuplicate).values(created_at=AT))
    db.session.commit()
    pair = db.session.scalar(select(PossibleDuplicate))
    jane, claimant = world["jane"], db.session.get(Customer, claimant.id)
    ids = {"pair": pair.id, "jane": jane.id, "claimant": claimant.id, "address": jane.addresses[0].id,
           **{f"{who}_{i.kind}": i.id for who, c in (("jane", jane), ("claimant", claimant)) for i in c.identities}}
    assert_pinned(text_of(client.get("/api/v1/duplicates", headers=world["headers"])), DUPLICATES, **ids)
    assert_pinned(text_of(client.get(f"/api/v1/duplicates/{pair.id}", headers=world["headers"])), PAIR, **ids)
    dismissed = text_of(client.post(f"/api/v1/duplicates/{pair.id}/dismiss", json={}, headers=world["headers"]))
    assert_pinned(dismissed, PAIR.replace('"status":"open"', '"status":"dismissed"'), **ids)


def test_audit_trail_entries(client, world, make_user, api_token):
    headers = api_token(make_user("records", email="ig@test.example", name="Ivy Governance"))
    audit(None, "records.retention_run", "retention", None, dry_run=True)
    db.session.commit()
    db.session.execute(AuditLog.__table__.update().values(at=AT))  # the bare table: the guard is for the app
    db.session.commit()
    merged = text_of(client.get("/api/v1/records/audit?action=case.", headers=headers))
    sue = db.session.scalar(select(User).where(User.name == "Sue Visor"))
    entry = {e.action: e.id for e in db.session.scalars(select(AuditLog))}
    assert_pinned(merged, AUDIT_BY_STAFF, sup=sue.email, sup_id=sue.id, entry=entry["case.merge"],
                  case=world["kept"].id, ref=world["kept"].reference, dup=world["duplicate"].reference)
    answer = text_of(client.get("/api/v1/records/audit?action=records.", headers=headers))
    assert_pinned(answer, AUDIT_BY_NOBODY, entry=entry["records.retention_run"])


CASE = (
    '{"allowed_transitions":["awaiting_customer","resolved"],"assignee":{"id":1,"name":"Owen Officer"}'
    ',"category":"pothole","closed_at":null,"created_at":"2026-03-02T09:30:00+00:00","customer_id":1'
    ',"customer_name":"Jane Resident","description":"Deep, by the bus stop","events":[{"actor":null'
    ',"body":"Deep, by the bus stop","from":null,"id":1,"kind":"created"'
    ',"occurred_at":"2026-03-02T09:30:00+00:00","public":false,"to":"new"},{"actor":null'
    ',"body":"{routed}","from":null,"id":2,"kind":"routed","occurred_at":"2026-03-02T09:30:00+00:00"'
    ',"public":false,"to":"Highways"},{"actor":"Sue Visor","body":null,"from":null,"id":5'
    ',"kind":"assigned","occurred_at":"2026-03-02T09:30:00+00:00","public":false'
    ',"to":"Owen Officer"},{"actor":"Sue Visor","body":"crew booked","from":"new","id":6'
    ',"kind":"status_changed","occurred_at":"2026-03-02T09:30:00+00:00","public":false'
    ',"to":"in_progress"},{"actor":"Sue Visor","body":"Crew booked for Tuesday","from":null,"id":7'
    ',"kind":"note","occurred_at":"2026-03-02T09:30:00+00:00","public":false'
    ',"to":null},{"actor":"Sue Visor","body":"We will fill it on Tuesday","from":null,"id":8'
    ',"kind":"public_update","occurred_at":"2026-03-02T09:30:00+00:00","public":true'
    ',"to":null},{"actor":"Sue Visor","body":"{dup} (Jane Resident): Hole in the road","from":"{dup}"'
    ',"id":10,"kind":"merged_in","occurred_at":"2026-03-02T09:30:00+00:00","public":false,"to":"{ref}"}]'
    ',"first_responded_at":"2026-03-02T09:30:00+00:00"'
    ',"first_response_due_at":"2026-03-04T01:30:00+00:00","location":{"address":"4 Main Street, Carlisle"'
    ',"lat":54.89,"long":-2.93},"merged_into":null,"priority":"normal","queue":"highways_cases"'
    ',"reference":"{ref}","resolved_at":null,"service":"highways","service_name":"Highways"'
    ',"sla_at_risk":false,"sla_breached":false,"sla_due_at":"2026-03-04T01:30:00+00:00","sla_hours":40'
    ',"source_channel":null,"status":"in_progress","title":"Pothole on Main Street"}\n'
)

WORK_LIST = (
    '{"has_next":false,"items":[{"assignee":{"id":1,"name":"Owen Officer"},"category":"pothole"'
    ',"created_at":"2026-03-02T09:30:00+00:00","priority":"normal","reference":"{ref}"'
    ',"service":"highways","sla_at_risk":false,"sla_breached":false'
    ',"sla_due_at":"2026-03-04T01:30:00+00:00","status":"in_progress","title":"Pothole on Main Street"}]'
    ',"page":1,"per_page":50}\n'
)

TIMELINE = (
    '{"items":[{"agent":"Sue Visor","case_reference":null,"category":"pothole","channel":"phone"'
    ',"conversation_id":null,"direction":"inbound","handle_seconds":270,"id":1,"kind":"contact"'
    ',"notes":"Rang about the hole","occurred_at":"2026-03-02T09:30:00+00:00","outcome":"signposted"'
    ',"summary":"Call: Pothole"},{"body":"{dup} (Jane Resident): Hole in the road"'
    ',"case_reference":"{ref}","channel":null,"conversation_id":null,"direction":null,"event":"merged_in"'
    ',"id":10,"kind":"case_event","occurred_at":"2026-03-02T09:30:00+00:00","public":false'
    ',"summary":"Case {dup} merged into {ref}"},{"body":"same hole","case_reference":"{dup}"'
    ',"channel":null,"conversation_id":null,"direction":null,"event":"merged","id":9,"kind":"case_event"'
    ',"occurred_at":"2026-03-02T09:30:00+00:00","public":false,"summary":"Case {dup} merged into {ref}"}]'
    ',"next":"MjAyNi0wMy0wMlQwOTozMDowMCswMDowMHxjYXNlX2V2ZW50fDk"}\n'
)

CONTACT = (
    '{"case_reference":"{ref}","category":"pothole","channel":"phone","customer_id":1'
    ',"direction":"inbound","ended_at":"2026-03-02T09:29:30+00:00","handle_seconds":270,"id":1'
    ',"notes":"Rang about the hole","occurred_at":"2026-03-02T09:25:00+00:00","outcome":"case_raised"'
    ',"started_at":"2026-03-02T09:25:00+00:00"}\n'
)

SERVICES = (
    '{"items":[{"categories":["pothole","street_light"],"code":"highways","name":"Highways"'
    ',"sla_hours":40}]}\n'
)

BANNERS = (
    '{"items":[{"created_at":"2026-03-02T09:30:00+00:00","expires_at":"2099-01-01T12:00:00+00:00","id":1'
    ',"message":"Phones down until noon","public":true}]}\n'
)

PAIR = (
    '{"created_at":"2026-03-02T09:30:00+00:00","customer":{"addresses":[],"cases":0,"contacts":0'
    ',"created_at":"2026-03-02T09:30:00+00:00","id":{claimant},"identities":[{"id":{claimant_email},"kind":"email"'
    ',"main":true,"source":"chat","value":"mallory@example.net","verified":false}]'
    ',"merged_into_id":null,"name":"Mallory Smith"},"id":{pair},"other":{"addresses":[{"id":{address}'
    ',"main":true,"text":"4 Main Street, Carlisle, CA3 8QG"}],"cases":2,"contacts":0'
    ',"created_at":"2026-03-02T09:30:00+00:00","id":{jane},"identities":[{"id":{jane_email},"kind":"email"'
    ',"main":true,"source":"staff","value":"jane@example.org","verified":false},{"id":{jane_phone}'
    ',"kind":"phone","main":true,"source":"staff","value":"+447700900002","verified":true}]'
    ',"merged_into_id":null,"name":"Jane Resident"},"reasons":[{"kind":"phone"'
    ',"value":"+447700900002","why":"same phone; the name given was \'Mallory Smith\''
    ', the record says \'Jane Resident\'"}],"source":"chat","status":"open"}\n'
)

DUPLICATES = '{"items":[' + PAIR.rstrip("\n") + ']}\n'

AUDIT_BY_STAFF = (
    '{"items":[{"action":"case.merge","actor":"{sup}","actor_id":{sup_id},"at":"2026-03-02T09:30:00+00:00"'
    ',"details":{"moved":{"attachments":0,"contacts":0,"conversations":0},"reason":"same hole"'
    ',"source":"{dup}","target":"{ref}"},"id":{entry},"target_id":"{case}","target_type":"case"}]'
    ',"next":null}\n'
)

AUDIT_BY_NOBODY = (
    '{"items":[{"action":"records.retention_run","actor":null,"actor_id":null'
    ',"at":"2026-03-02T09:30:00+00:00","details":{"dry_run":true},"id":{entry},"target_id":null'
    ',"target_type":"retention"}],"next":null}\n'
)
