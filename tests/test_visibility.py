"""The visibility policy, scenario by scenario: each example of issue 10 refused or redacted, reads audited."""
import pytest
from sqlalchemy import select

from crm import visibility
from crm.extensions import db
from crm.models import AuditLog, Case, Contact, Conversation, Customer, Message, Service
from tests import factories
from tests.visibility_world import build_world


@pytest.fixture
def world(app):
    return build_world()


@pytest.fixture
def headers(world, api_token):
    return lambda role: api_token(world.users[role])


def _audits(action):
    return db.session.scalars(select(AuditLog).where(AuditLog.action == action)).all()


# ---- the timeline showed restricted content to every member of staff -------------------------

def test_the_timeline_redacts_a_sensitive_case_for_an_agent_and_shows_it_to_its_officer(client, world, headers):
    jane = world.customers["jane"]
    agent = client.get(f"/api/v1/customers/{jane.id}/timeline?limit=100", headers=headers("agent")).get_json()
    text = str(agent)
    assert "SECRET-ASC" not in text
    redacted = [e for e in agent["items"] if e.get("redacted")]
    assert redacted and all(e["summary"] == "restricted case — Adult Social Care" or
                            e["summary"].startswith("restricted") for e in redacted)
    assert all(e["case_reference"] is None and e["conversation_id"] is None for e in redacted)

    officer = client.get(f"/api/v1/customers/{jane.id}/timeline?limit=100", headers=headers("asc_officer")).get_json()
    assert "SECRET-ASC-NOTE" in str(officer) and not any(e.get("redacted") for e in officer["items"])
    assert _audits("case.view_sensitive"), "a sensitive read through the timeline is audited"


def test_vulnerability_notes_are_for_supervisors_and_sensitive_services_only(client, auth, world):
    jane = world.customers["jane"]
    for role, shown in (("highways_officer", False), ("agent", False), ("asc_officer", True), ("supervisor", True)):
        auth.login(world.users[role])
        page = client.get(f"/customers/{jane.id}").get_data(as_text=True)
        assert ("SECRET-VULNERABILITY" in page) == shown, role
        if not shown:
            assert "flagged" in page  # they know to ask
        auth.logout()
    assert len(_audits("customer.view_sensitive")) == 2


def test_a_chat_whose_topic_is_a_sensitive_service_is_that_services_even_in_a_queue_of_none(world):
    chat = world.conversations["asc_chat"]
    assert chat.queue.service_id is None
    assert visibility.conversation_service(chat).code == "adult_social_care"
    assert visibility.conversation_is_sensitive(chat)
    assert not visibility.can_see_conversation(world.users["agent"], chat)
    assert visibility.can_see_conversation(world.users["agent2"], chat)  # its holder
    queue_view = visibility.redact_chat_summary(chat, {"name": "Jane", "email": "jane@vis.example",
                                                       "customer_name": "Jane Resident", "topic": chat.topic})
    assert queue_view["email"] is None and "Jane" not in queue_view["name"]


# ---- paths that skipped the rule ---------------------------------------------------------------

def test_an_agent_cannot_post_into_or_read_another_agents_live_chat_through_the_api(client, world, headers):
    live = world.conversations["live_chat"]
    refused = client.post(f"/api/v1/conversations/{live.id}/reply", json={"body": "hello from the side"},
                          headers=headers("agent"))
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "not_yours"
    note = client.post(f"/api/v1/conversations/{live.id}/reply", json={"body": "psst", "internal": True},
                       headers=headers("agent"))
    assert note.status_code == 403
    assert client.get(f"/api/v1/conversations/{live.id}", headers=headers("agent")).status_code == 403
    assert db.session.scalar(select(Message).where(Message.body.in_(("hello from the side", "psst")))) is None
    own = client.get(f"/api/v1/conversations/{live.id}", headers=headers("agent2"))
    assert own.status_code == 200 and "My bin was missed" in own.get_data(as_text=True)


def test_nobody_but_its_holder_writes_in_a_waiting_chat_through_the_api(client, world, headers):
    waiting = world.conversations["live_chat"]
    waiting.status, waiting.assignee_id = "queued", None
    db.session.commit()
    refused = client.post(f"/api/v1/conversations/{waiting.id}/reply", json={"body": "jumping the queue"},
                          headers=headers("agent"))
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "not_yours"


def test_an_agent_cannot_move_a_contact_off_a_restricted_case(client, world, headers):
    contact, pothole = world.contacts["asc_email"], world.cases["pothole"]
    moved = client.post(f"/api/v1/cases/{pothole.reference}/contacts", json={"contact_id": contact.id},
                        headers=headers("agent"))
    assert moved.status_code == 403
    assert db.session.get(Contact, contact.id).case_id == world.cases["asc"].id
    # Not even its own officer may move it to another service's case: it would leave Adult Social Care.
    officer = client.post(f"/api/v1/cases/{pothole.reference}/contacts", json={"contact_id": contact.id},
                          headers=headers("asc_officer"))
    assert officer.status_code == 403


def test_a_supervisor_cannot_merge_a_restricted_case_into_an_ordinary_one(client, world, headers):
    asc, pothole = world.cases["asc"], world.cases["pothole"]
    merged = client.post(f"/api/v1/cases/{asc.reference}/merge", json={"into": pothole.reference},
                         headers=headers("supervisor"))
    assert merged.status_code == 403, merged.get_json()
    assert db.session.get(Case, asc.id).merged_into_id is None
    assert db.session.get(Conversation, world.conversations["asc_email"].id).case_id == asc.id
    # The agent still cannot read its email afterwards.
    assert client.get(f"/api/v1/conversations/{world.conversations['asc_email'].id}",
                      headers=headers("agent")).status_code == 403


def test_a_restricted_case_merges_into_another_case_of_its_own_service(client, world, headers):
    second = factories.case(world.customers["jane"], "adult_social_care", "safeguarding", title="Second concern")
    merged = client.post(f"/api/v1/cases/{world.cases['asc'].reference}/merge", json={"into": second.reference},
                         headers=headers("asc_officer"))
    assert merged.status_code == 200, merged.get_json()


def test_splitting_a_contact_off_a_restricted_case_needs_someone_who_works_it(client, world, headers):
    contact = world.contacts["asc_email"]
    split = client.post(f"/api/v1/cases/{world.cases['asc'].reference}/split", json={"contact_id": contact.id},
                        headers=headers("highways_officer"))
    assert split.status_code == 403


def test_a_supervisor_cannot_move_a_sensitive_email_to_an_ordinary_queue(client, world, headers, app):
    from crm.models import Queue

    asc = world.services["asc"]
    asc_mail = Queue(code="asc_email", name="ASC email", channel="email", service_id=asc.id)
    general = Queue(code="general_email", name="General email", channel="email")
    db.session.add_all([asc_mail, general])
    db.session.flush()
    email = Conversation(customer_id=world.customers["jane"].id, channel="email", status="open", subject="Care",
                         token="tok-move", queue_id=asc_mail.id, last_seq=0)
    db.session.add(email)
    db.session.commit()
    moved = client.post(f"/api/v1/supervisor/conversations/{email.id}/move", json={"queue": "general_email"},
                        headers=headers("supervisor"))
    assert moved.status_code == 403
    to_agent = client.post(f"/api/v1/supervisor/conversations/{email.id}/move",
                           json={"agent_id": world.users["agent"].id}, headers=headers("supervisor"))
    assert to_agent.status_code == 200
    # Assignment gives the need to know.
    assert client.get(f"/api/v1/conversations/{email.id}", headers=headers("agent")).status_code == 200


# ---- restricted customers ----------------------------------------------------------------------

def test_a_restricted_customer_is_a_redacted_search_result_and_a_refused_page_for_an_agent(client, world, headers):
    rita = world.customers["rita"]
    found = client.get("/api/v1/customers?q=rita", headers=headers("agent")).get_json()["items"]
    assert found == [{"id": rita.id, "name": "Restricted record", "restricted": True, "identities": [],
                      "addresses": [], "email": None, "phone": None, "merged_into_id": None, "created_at": None}] \
        or (found[0]["name"] == "Restricted record" and not found[0]["identities"])
    assert client.get(f"/api/v1/customers/{rita.id}", headers=headers("agent")).status_code == 403
    assert client.post("/api/v1/contacts", json={"channel": "phone", "customer_id": rita.id, "outcome": "signposted"},
                       headers=headers("agent")).status_code == 403
    assert client.get(f"/api/v1/customers/{rita.id}", headers=headers("supervisor")).status_code == 200
    assert [a.target_id for a in _audits("customer.view_restricted")] == [str(rita.id)]


def test_working_a_restricted_customers_chat_gives_its_holder_the_record(world):
    rita, agent = world.customers["rita"], world.users["agent"]
    assert not visibility.can_see_customer(agent, rita)
    world.conversations["rita_email"].assignee_id = agent.id
    db.session.commit()
    assert visibility.can_see_customer(agent, rita)


def test_a_restricted_customer_cannot_be_merged_into_an_ordinary_record(client, world, headers):
    rita, jane = world.customers["rita"], world.customers["jane"]
    merged = client.post(f"/api/v1/customers/{jane.id}/merge", json={"source_id": rita.id},
                         headers=headers("supervisor"))
    assert merged.status_code == 403
    assert db.session.get(Customer, rita.id).merged_into_id is None


# ---- marking things sensitive ------------------------------------------------------------------

def test_staff_who_need_them_set_and_clear_vulnerability_notes_and_the_restricted_mark(client, world, headers):
    jane = world.customers["jane"]
    for role in ("agent", "highways_officer"):
        refused = client.put(f"/api/v1/customers/{jane.id}/sensitivity", json={"vulnerability_notes": "x"},
                             headers=headers(role))
        assert refused.status_code == 403, role
    done = client.put(f"/api/v1/customers/{jane.id}/sensitivity",
                      json={"vulnerability_notes": "Uses a wheelchair", "restricted": True}, headers=headers("supervisor"))
    assert done.status_code == 200 and done.get_json()["restricted"] is True
    assert client.get(f"/api/v1/customers/{jane.id}", headers=headers("agent")).status_code == 403
    cleared = client.put(f"/api/v1/customers/{jane.id}/sensitivity", json={"vulnerability_notes": "", "restricted": False},
                         headers=headers("asc_officer"))
    assert cleared.status_code == 200 and cleared.get_json()["vulnerability_notes"] is None
    actions = [a.action for a in db.session.scalars(select(AuditLog).where(AuditLog.target_type == "customer",
                                                                             AuditLog.action.notlike("%view%")))]
    assert actions == ["customer.vulnerability_set", "customer.restricted", "customer.vulnerability_cleared",
                       "customer.unrestricted"]
    assert "Uses a wheelchair" not in str([a.details for a in _audits("customer.vulnerability_set")])


def test_the_customer_page_form_marks_a_record_restricted(client, auth, world):
    from tests.conftest import csrf_from

    jane = world.customers["jane"]
    auth.login(world.users["supervisor"])
    page = client.get(f"/customers/{jane.id}").get_data(as_text=True)
    assert "Vulnerability and restriction" in page
    saved = client.post(f"/customers/{jane.id}/sensitivity", data={
        "csrf_token": csrf_from(page), "vulnerability_notes": "Carer visits daily", "restricted": "y"})
    assert saved.status_code == 302
    assert db.session.get(Customer, jane.id).restricted is True
    auth.logout()
    auth.login(world.users["agent"])
    assert "Vulnerability and restriction" not in client.get("/console?q=Jane").get_data(as_text=True)
    assert client.get(f"/customers/{jane.id}").status_code == 403


def test_the_cli_marks_a_service_sensitive_and_a_customer_restricted(runner, world):
    result = runner.invoke(args=["crm", "mark-sensitive", "highways"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(Service.sensitive).where(Service.code == "highways")) is True
    assert not visibility.can_see_case(world.users["agent"], db.session.get(Case, world.cases["pothole"].id))
    result = runner.invoke(args=["crm", "restrict-customer", str(world.customers["jane"].id), "--off"])
    assert result.exit_code == 0 and '"restricted": false' in result.output
    assert runner.invoke(args=["crm", "mark-sensitive", "nope"]).exit_code != 0


# ---- residents and anonymous callers -------------------------------------------------------------

def test_residents_see_their_own_cases_and_never_internal_notes(world):
    jane = visibility.Resident(customer_ids=frozenset({world.customers["jane"].id}))
    asc_email = world.conversations["asc_email"]
    assert visibility.can_see_case(jane, world.cases["asc"])
    assert not visibility.can_see_case(jane, world.cases["rita"])
    notes = [m for m in asc_email.messages if m.internal]
    assert notes and not any(visibility.can_see_message(jane, m) for m in notes)
    assert all(visibility.can_see_message(jane, m) for m in asc_email.messages if not m.internal)
    assert not any(visibility.can_see_case_event(jane, e) for e in world.cases["asc"].events if not e.public)
    tracker = visibility.Resident(case_ids=frozenset({world.cases["pothole"].id}))
    assert visibility.can_see_case(tracker, world.cases["pothole"])
    assert not visibility.can_see_case(tracker, world.cases["form_pothole"])
    assert db.session.scalars(select(Case).where(visibility.case_condition(tracker))).all() == [world.cases["pothole"]]


def test_anonymous_callers_see_nothing_but_open311s_public_reports(world):
    for name, case in world.cases.items():
        assert not visibility.can_see_case(None, case)
        assert visibility.open311_public(case) == (name in ("pothole", "form_pothole")), name
    assert visibility.open311_description(world.cases["form_pothole"]) is None  # form answers stay private
    assert visibility.open311_description(world.cases["pothole"]) == "Deep pothole by the bus stop"
    assert not visibility.can_see_attachment(None, world.attachments["pothole_email"])


def test_open311_lists_by_id_do_not_leak_a_sequential_sweep(client, world):
    ids = [c.id for c in world.cases.values()]
    every = ",".join(f"CAS-{n:06d}" for n in range(max(1, min(ids) - 5), max(ids) + 5))
    listed = client.get(f"/open311/v2/requests.json?service_request_id={every}").get_json()
    assert {r["service_request_id"] for r in listed} == {world.cases["pothole"].reference,
                                                          world.cases["form_pothole"].reference}
    form = next(r for r in listed if r["service_request_id"] == world.cases["form_pothole"].reference)
    assert form["description"] is None
    hidden = client.get(f"/open311/v2/requests/{world.cases['asc'].reference}.xml")
    assert hidden.status_code == 404 and b"SECRET" not in hidden.data


def test_only_records_officers_read_the_audit_trail(world):
    assert [r for r in world.users if visibility.can_see_audit(world.users[r])] == ["admin", "records"]
