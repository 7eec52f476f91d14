"""The cases API from outside: raise, read with events, work, merge, split; roles on every endpoint."""
import pytest

from crm.models import AuditLog, Case
from tests import factories


def api_user(role, **kw):
    """A staff user who calls the API with a token (no password: hashing one is slow and unused here)."""
    return factories.user(role, password=None, **kw)


@pytest.fixture
def world(app, api_token):
    highways = factories.service("highways", "Highways", categories=(("pothole", "Pothole"),))
    care = factories.service("adult_social_care", "Adult Social Care", categories=(("care_assessment", "Assessment"),),
                             sensitive=True)
    users = {
        "agent": api_user("agent"),
        "supervisor": api_user("supervisor"),
        "officer": api_user("service_officer", service_id=highways.id),
        "care_officer": api_user("service_officer", service_id=care.id),
        "admin": api_user("admin"),
    }
    headers = {role: api_token(user) for role, user in users.items()}
    headers["anonymous"] = {}
    customer = factories.customer("Jane Resident", email="jane@example.org")
    return {"users": users, "headers": headers, "customer": customer, "highways": highways, "care": care}


def new_case(world, service="highways", category="pothole"):
    return factories.case(world["customer"], service, category, "Something to do")


def test_raise_a_case_and_read_it_back_with_its_events(client, world):
    response = client.post("/api/v1/cases", headers=world["headers"]["agent"], json={
        "customer_id": world["customer"].id, "service": "highways", "category": "pothole",
        "title": "Pothole on Main Street", "description": "Deep one", "latitude": 54.89, "longitude": -2.93})
    assert response.status_code == 201, response.json
    body = response.json
    assert body["reference"].startswith("CAS-") and body["status"] == "new"
    assert body["service"] == "highways" and body["queue"] == "highways_cases"
    assert body["sla_due_at"] and body["first_response_due_at"]
    assert body["allowed_transitions"] == ["open", "in_progress"]
    read = client.get(f"/api/v1/cases/{body['reference'].lower()}", headers=world["headers"]["officer"])
    assert read.status_code == 200
    assert [e["kind"] for e in read.json["events"]] == ["created", "routed"]
    assert read.json["location"] == {"address": None, "lat": 54.89, "long": -2.93}


def test_service_may_be_left_to_routing(client, world):
    response = client.post("/api/v1/cases", headers=world["headers"]["agent"], json={
        "customer_id": world["customer"].id, "category": "pothole", "title": "Hole"})
    assert response.status_code == 201 and response.json["service"] == "highways"


def test_work_a_case_through_patch(client, world, db):
    case = new_case(world)
    officer = world["users"]["officer"]
    h = world["headers"]["officer"]
    steps = [
        {"assignee": officer.email},
        {"status": "in_progress", "note": "Inspector booked"},
        {"public_update": "An inspector will visit on Tuesday."},
        {"status": "resolved", "reason": "Filled"},
    ]
    for step in steps:
        response = client.patch(f"/api/v1/cases/{case.reference}", headers=h, json=step)
        assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "resolved" and body["assignee"]["id"] == officer.id
    assert body["first_responded_at"] is not None and body["resolved_at"] is not None
    kinds = [(e["kind"], e["public"]) for e in body["events"]]
    assert ("note", False) in kinds and ("public_update", True) in kinds
    change = [e for e in body["events"] if e["kind"] == "status_changed"][-1]
    assert (change["from"], change["to"], change["actor"], change["body"]) == ("in_progress", "resolved",
                                                                               officer.name, "Filled")


def test_patch_reroutes_to_another_service(client, world, db):
    factories.service("waste", "Waste", categories=(("fly_tipping", "Fly-tipping"),))
    case = new_case(world)
    response = client.patch(f"/api/v1/cases/{case.reference}", headers=world["headers"]["supervisor"],
                            json={"service": "waste", "reason": "Dumped rubbish"})
    assert response.status_code == 200
    assert response.json["service"] == "waste" and response.json["category"] == "fly_tipping"
    assert response.json["events"][-1]["kind"] == "rerouted"


@pytest.mark.parametrize("body, status, field", [
    ({"status": "closed"}, 409, "status"),
    ({"status": "finished"}, 422, "status"),
    ({}, 422, "_schema"),
    ({"colour": "red"}, 422, "colour"),
    ({"assignee": "nobody@test.example"}, 422, "assignee"),
    ({"assignee": 999999}, 422, "assignee"),
    ({"assignee": True}, 422, "assignee"),
    ({"service": "nope"}, 422, "service"),
    ({"public_update": ""}, 422, "public_update"),
    ({"category": "pothole"}, 422, "category"),
])
def test_bad_patches_are_refused_clearly(client, world, body, status, field):
    case = new_case(world)
    response = client.patch(f"/api/v1/cases/{case.reference}", headers=world["headers"]["supervisor"], json=body)
    assert response.status_code == status, response.json
    assert field in response.json["error"]["fields"]


def test_a_refused_patch_changes_nothing(client, world, db):
    case = new_case(world)
    response = client.patch(f"/api/v1/cases/{case.reference}", headers=world["headers"]["supervisor"],
                            json={"note": "written first", "status": "closed"})
    assert response.status_code == 409
    db.session.expire_all()
    assert [e.kind for e in db.session.get(Case, case.id).events] == ["created", "routed"]


@pytest.mark.parametrize("path, body", [
    ("/api/v1/cases", "not json"),
    ("/api/v1/cases", {"customer_id": "one", "category": "pothole", "title": "x"}),
    ("/api/v1/cases", {"customer_id": 999999, "category": "pothole", "title": "x"}),
    ("/api/v1/cases", {"customer_id": 1, "category": "pothole", "title": ""}),
    ("/api/v1/cases", {"customer_id": 1, "category": "pothole", "title": "x", "latitude": 91, "longitude": 0}),
    ("/api/v1/cases", {"customer_id": 1, "category": "pothole", "title": "x", "latitude": 54.0}),
    ("/api/v1/cases", {"customer_id": 1, "category": "nothing_like_it", "title": "x"}),
    ("/api/v1/cases/CAS-000001/merge", {"into": "CAS-999999"}),
    ("/api/v1/cases/CAS-000001/split", {"contact_id": 999999}),
    ("/api/v1/cases/CAS-000001/contacts", {"contact_id": "x"}),
])
def test_bad_input_is_a_4xx_never_a_500(client, world, path, body):
    new_case(world)
    headers = world["headers"]["supervisor"]
    if isinstance(body, str):
        response = client.post(path, headers=headers, data=body, content_type="application/json")
    else:
        response = client.post(path, headers=headers, json=body)
    assert 400 <= response.status_code < 500, response.json
    assert "error" in response.json


def test_unknown_reference_is_404(client, world):
    assert client.get("/api/v1/cases/CAS-424242", headers=world["headers"]["agent"]).status_code == 404
    assert client.patch("/api/v1/cases/nonsense", headers=world["headers"]["admin"],
                        json={"note": "x"}).status_code == 404


def test_services_are_listed_with_categories_and_sla(client, world):
    response = client.get("/api/v1/services", headers=world["headers"]["agent"])
    assert response.status_code == 200
    by_code = {s["code"]: s for s in response.json["items"]}
    assert by_code["highways"] == {"code": "highways", "name": "Highways", "categories": ["pothole"], "sla_hours": 40}


def test_merge_and_split_through_the_api(client, world, db):
    from crm.customers.timeline import record_contact

    kept, duplicate = new_case(world), new_case(world)
    call = record_contact(world["customer"], "phone", summary="about the duplicate", case=duplicate)
    db.session.commit()
    h = world["headers"]["officer"]
    merged = client.post(f"/api/v1/cases/{duplicate.reference}/merge", headers=h, json={"into": kept.reference})
    assert merged.status_code == 200 and merged.json["reference"] == kept.reference
    assert client.get(f"/api/v1/cases/{duplicate.reference}", headers=h).json["merged_into"] == kept.reference
    split = client.post(f"/api/v1/cases/{kept.reference}/split", headers=h, json={"contact_id": call.id})
    assert split.status_code == 201 and split.json["reference"] not in (kept.reference, duplicate.reference)
    again = client.post(f"/api/v1/cases/{duplicate.reference}/merge", headers=h, json={"into": kept.reference})
    assert again.status_code == 409


def test_the_work_list_filters(client, world, db):
    mine, theirs, done = new_case(world), new_case(world), new_case(world)
    officer = world["users"]["officer"]
    mine.assignee_id = officer.id
    done.status = "closed"
    db.session.commit()
    h = world["headers"]["officer"]
    listed = client.get("/api/v1/cases", headers=h).json
    assert {c["reference"] for c in listed["items"]} == {mine.reference, theirs.reference}
    assert [c["reference"] for c in client.get("/api/v1/cases?assigned=me", headers=h).json["items"]] == [
        mine.reference]
    assert [c["reference"] for c in client.get("/api/v1/cases?status=closed", headers=h).json["items"]] == [
        done.reference]
    assert client.get("/api/v1/cases?at_risk=true", headers=h).json["items"] == []
    assert client.get("/api/v1/cases?status=bogus", headers=h).status_code == 422
    paged = client.get("/api/v1/cases?per_page=1", headers=h).json
    assert len(paged["items"]) == 1 and paged["has_next"] is True


ROLES = ["anonymous", "agent", "supervisor", "officer", "care_officer", "admin"]
# (method, path template, body, sensitive case?) -> expected status per role, in ROLES order.
ROLE_TABLE = [
    ("GET", "/api/v1/services", None, False, [401, 200, 200, 200, 200, 200]),
    ("GET", "/api/v1/cases", None, False, [401, 200, 200, 200, 200, 200]),
    ("POST", "/api/v1/cases", "new", False, [401, 201, 201, 201, 201, 201]),
    ("GET", "/api/v1/cases/{ref}", None, False, [401, 200, 200, 200, 200, 200]),
    ("GET", "/api/v1/cases/{ref}", None, True, [401, 403, 200, 403, 200, 200]),
    ("PATCH", "/api/v1/cases/{ref}", {"status": "open"}, False, [401, 403, 200, 200, 403, 200]),
    ("PATCH", "/api/v1/cases/{ref}", {"status": "open"}, True, [401, 403, 200, 403, 200, 200]),
    ("PATCH", "/api/v1/cases/{ref}", {"note": "Resident rang"}, False, [401, 200, 200, 200, 200, 200]),
    ("PATCH", "/api/v1/cases/{ref}", {"public_update": "On its way"}, False, [401, 403, 200, 200, 403, 200]),
    ("POST", "/api/v1/cases/{ref}/merge", "merge", False, [401, 403, 200, 200, 403, 200]),
]


@pytest.mark.parametrize("method, template, body, sensitive, expected", ROLE_TABLE)
def test_role_table(client, world, db, method, template, body, sensitive, expected):
    for role, status in zip(ROLES, expected):
        case = new_case(world, "adult_social_care", "care_assessment") if sensitive else new_case(world)
        payload = body
        if body == "new":
            payload = {"customer_id": world["customer"].id, "category": "pothole", "title": "Hole"}
        elif body == "merge":
            payload = {"into": new_case(world).reference}
        response = client.open(template.format(ref=case.reference), method=method,
                               headers=world["headers"][role], json=payload)
        assert response.status_code == status, (role, response.json)


def test_reading_a_sensitive_case_is_audited(client, world, db):
    case = new_case(world, "adult_social_care", "care_assessment")
    client.get(f"/api/v1/cases/{case.reference}", headers=world["headers"]["care_officer"])
    entry = db.session.query(AuditLog).filter_by(action="case.view_sensitive").one()
    assert entry.actor_id == world["users"]["care_officer"].id and entry.details["reference"] == case.reference


def test_cookie_sessions_need_the_csrf_token(client, auth, world, make_user):
    case = new_case(world)
    auth.login(make_user("supervisor"))
    refused = client.patch(f"/api/v1/cases/{case.reference}", json={"note": "x"})
    assert refused.status_code == 400
    allowed = client.patch(f"/api/v1/cases/{case.reference}", json={"note": "x"},
                           headers={"X-CSRFToken": auth.csrf()})
    assert allowed.status_code == 200


def test_sensitive_cases_are_left_out_of_lists_for_those_who_may_not_see_them(client, world):
    care_case = new_case(world, "adult_social_care", "care_assessment")
    road_case = new_case(world)

    def listed(role):
        return {c["reference"] for c in client.get("/api/v1/cases", headers=world["headers"][role]).json["items"]}

    assert listed("agent") == {road_case.reference}
    assert listed("officer") == {road_case.reference}
    assert listed("care_officer") == {care_case.reference}  # their own service by default
    assert listed("supervisor") == {road_case.reference, care_case.reference}
