"""Open311 GeoReport v2 round trips in XML and JSON, with the quirks of FixMyStreet and older clients."""
import io
from xml.etree import ElementTree as ET

import pytest

from crm.cases.service import change_status, get_case, post_public_update
from crm.models import Attachment, Contact, CustomerIdentity, FormDefinition, Open311Request
from tests import factories

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def setup(app, db, make_user, runner):
    highways = factories.service("highways", "Highways", categories=(("pothole", "Pothole"),
                                                                     ("streetlight_fault", "Street light")))
    db.session.add(FormDefinition(
        slug="report-a-pothole", title="Report a pothole", service_id=highways.id, category_code="pothole",
        fields=[
            {"name": "location", "label": "Where is it?", "type": "text", "required": True},
            {"name": "size", "label": "How big is it?", "type": "radios", "required": True,
             "options": ["Small", "Large"]},
            {"name": "depth_cm", "label": "Depth in cm", "type": "number", "required": False},
            {"name": "details", "label": "Anything else?", "type": "textarea", "required": False},
        ]))
    db.session.commit()
    integration = make_user("agent", email="fixmystreet@test.example", name="FixMyStreet")
    result = runner.invoke(args=["crm", "create-token", integration.email])
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    return {"key": key, "highways": highways, "officer": make_user("supervisor")}


def xml(response):
    assert response.headers["Content-Type"].startswith("text/xml"), response.headers["Content-Type"]
    return ET.fromstring(response.data)


def fms_post(client, key, **extra):
    """What FixMyStreet's Open311 client sends: form fields, api_key in the body, attribute[...]."""
    data = {"jurisdiction_id": "", "api_key": key, "service_code": "pothole", "lat": "54.8925",
            "long": "-2.9329", "email": "Pat.Reporter@Example.org", "first_name": "Pat", "last_name": "Reporter",
            "description": "title: Pothole\n\ndetail: Deep hole by the bus stop", "attribute[size]": "Large",
            "attribute[fixmystreet_id]": "1234", "media_url": "https://fms.example/photo/1234.jpeg"}
    data.update(extra)
    return client.post("/open311/v2/requests.xml", data=data)


def test_discovery_in_both_formats(client, setup):
    doc = xml(client.get("/open311/v2/discovery.xml"))
    assert doc.tag == "discovery"
    endpoint = doc.find("endpoints/endpoint")
    assert endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint.findtext("url").endswith("/open311/v2/")
    assert [f.text for f in endpoint.findall("formats/format")] == ["text/xml", "application/json"]
    body = client.get("/open311/v2/discovery.json").json
    assert body["endpoints"][0]["formats"] == ["text/xml", "application/json"]


def test_services_list_categories_grouped_by_council_service(client, setup):
    doc = xml(client.get("/open311/v2/services.xml"))
    services = {s.findtext("service_code"): s for s in doc.findall("service")}
    assert set(services) == {"pothole", "streetlight_fault"}
    assert services["pothole"].findtext("metadata") == "true"
    assert services["streetlight_fault"].findtext("metadata") == "false"
    assert services["pothole"].findtext("group") == "Highways"
    assert services["pothole"].findtext("type") == "realtime"
    listed = client.get("/open311/v2/services.json?jurisdiction_id=").json
    assert {s["service_code"] for s in listed} == {"pothole", "streetlight_fault"}


def test_service_definition_attributes_come_from_the_web_form(client, setup):
    doc = xml(client.get("/open311/v2/services/pothole.xml"))
    assert doc.tag == "service_definition" and doc.findtext("service_code") == "pothole"
    attributes = {a.findtext("code"): a for a in doc.findall("attributes/attribute")}
    assert set(attributes) == {"size", "depth_cm"}  # location and details travel in Open311's own fields
    size = attributes["size"]
    assert (size.findtext("datatype"), size.findtext("required"), size.findtext("variable")) == (
        "singlevaluelist", "true", "true")
    assert [v.findtext("key") for v in size.findall("values/value")] == ["Small", "Large"]
    assert attributes["depth_cm"].findtext("datatype") == "number"
    body = client.get("/open311/v2/services/pothole.json").json
    assert [a["code"] for a in body["attributes"]] == ["size", "depth_cm"]
    # Older clients use the singular path.
    assert xml(client.get("/open311/v2/service/pothole.xml")).findtext("service_code") == "pothole"


def test_fixmystreet_round_trip_in_xml(client, setup, db):
    response = fms_post(client, setup["key"])
    assert response.status_code == 200, response.data
    request_el = xml(response).find("request")
    request_id, token = request_el.findtext("service_request_id"), request_el.findtext("token")
    assert request_id.startswith("CAS-") and token
    # The case is routed and on the reporter's timeline, with an open311 contact.
    case = get_case(request_id)
    assert case.service.code == "highways" and case.queue.code == "highways_cases"
    assert case.source_channel == "open311" and (case.latitude, case.longitude) == (54.8925, -2.9329)
    assert "size: Large" in case.description
    identity = db.session.query(CustomerIdentity).filter_by(kind="email", value="pat.reporter@example.org").one()
    assert case.customer_id == identity.customer_id and case.customer.name == "Pat Reporter"
    contact = db.session.query(Contact).filter_by(case_id=case.id).one()
    assert (contact.channel, contact.customer_id, contact.outcome) == ("open311", case.customer_id, "case_raised")
    stored = db.session.query(Open311Request).one()
    assert stored.attributes == {"size": "Large", "fixmystreet_id": "1234"}
    assert stored.media_url == "https://fms.example/photo/1234.jpeg"
    # Polling the token gives the id back.
    polled = xml(client.get(f"/open311/v2/tokens/{token}.xml?jurisdiction_id="))
    assert polled.find("request").findtext("service_request_id") == request_id
    # Progress flows back: open with the expected date, then the public update and closure.
    shown = xml(client.get(f"/open311/v2/requests/{request_id}.xml")).find("request")
    assert shown.findtext("status") == "open" and shown.findtext("agency_responsible") == "Highways"
    assert shown.findtext("expected_datetime") and shown.findtext("media_url").endswith("1234.jpeg")
    officer = setup["officer"]
    change_status(case, "in_progress", officer)
    post_public_update(case, "Repair booked for Thursday.", officer)
    from crm.cases.service import add_note
    add_note(case, "Internal: contractor overbooked", officer)
    db.session.commit()
    shown = xml(client.get(f"/open311/v2/requests/{request_id}.xml")).find("request")
    assert shown.findtext("status") == "open" and shown.findtext("status_notes") == "Repair booked for Thursday."
    change_status(case, "resolved", officer)
    post_public_update(case, "Filled.", officer)
    db.session.commit()
    listed = xml(client.get(f"/open311/v2/requests.xml?service_request_id={request_id}"))
    shown = listed.find("request")
    assert (shown.findtext("status"), shown.findtext("status_notes")) == ("closed", "Filled.")
    assert b"contractor" not in client.get("/open311/v2/requests.xml").data


def test_json_round_trip_with_api_key_in_the_query_string(client, setup):
    response = client.post(f"/open311/v2/requests.json?api_key={setup['key']}", data={
        "service_code": "streetlight_fault", "address_string": "Outside 12 Fell View, Keswick",
        "phone": "07700 900123", "description": "Light flickers all night"})
    assert response.status_code == 200, response.json
    [answer] = response.json
    request_id = answer["service_request_id"]
    [shown] = client.get(f"/open311/v2/requests/{request_id}.json").json
    assert shown["service_code"] == "streetlight_fault" and shown["address"] == "Outside 12 Fell View, Keswick"
    assert shown["status"] == "open" and shown["lat"] is None
    assert client.get(f"/open311/v2/tokens/{answer['token']}.json").json[0]["service_request_id"] == request_id


def test_multipart_with_an_uploaded_photo(client, setup, db):
    response = client.post("/open311/v2/requests.xml", content_type="multipart/form-data", data={
        "api_key": setup["key"], "service_code": "pothole", "lat": "54.6", "long": "-3.1",
        "attribute[size]": "Small", "email": "someone@example.org",
        "media": (io.BytesIO(PNG), "photo.png", "image/png")})
    assert response.status_code == 200, response.data
    request_id = xml(response).find("request").findtext("service_request_id")
    attachment = db.session.query(Attachment).one()
    assert attachment.case_id == get_case(request_id).id and attachment.content_type == "image/png"


def test_an_upload_that_is_not_an_image_is_refused(client, setup, db):
    response = client.post("/open311/v2/requests.xml", content_type="multipart/form-data", data={
        "api_key": setup["key"], "service_code": "pothole", "lat": "54.6", "long": "-3.1",
        "attribute[size]": "Small", "media": (io.BytesIO(b"MZ\x90\x00 not a photo"), "photo.jpg", "image/jpeg")})
    assert response.status_code == 400
    assert "image" in xml(response).find("error").findtext("description")
    assert db.session.query(Open311Request).count() == 0


def test_get_requests_filters(client, setup, db):
    first = xml(fms_post(client, setup["key"])).find("request").findtext("service_request_id")
    second = client.post("/open311/v2/requests.json", data={
        "api_key": setup["key"], "service_code": "streetlight_fault", "address_string": "Main St"}).json[0][
        "service_request_id"]
    case = get_case(second)
    change_status(case, "in_progress")
    change_status(case, "resolved")
    db.session.commit()

    def ids(query):
        return {r["service_request_id"] for r in client.get(f"/open311/v2/requests.json?{query}").json}

    assert ids("") == {first, second}
    assert ids("service_code=pothole") == {first}
    assert ids("status=closed") == {second}
    assert ids("status=open") == {first}
    assert ids(f"service_request_id={first},{second}") == {first, second}
    assert ids("start_date=2000-01-01T00:00:00Z&end_date=2000-01-02T00:00:00Z") == set()
    assert ids("start_date=2000-01-01T00:00:00Z") == {first, second}


@pytest.mark.parametrize("path, status", [
    ("/open311/v2/services/nothing.xml", 404),
    ("/open311/v2/requests/CAS-999999.xml", 404),
    ("/open311/v2/tokens/nope.xml", 404),
    ("/open311/v2/services.csv", 404),
    ("/open311/v2/services.xml?jurisdiction_id=elsewhere.example", 404),
    ("/open311/v2/requests.xml?start_date=yesterday", 400),
    ("/open311/v2/requests.xml?status=pending", 400),
    ("/open311/v2/requests.xml?start_date=2026-02-01&end_date=2026-01-01", 400),
    ("/open311/v2/no/such/thing.xml", 404),
])
def test_get_errors_use_the_spec_shape(client, setup, path, status):
    response = client.get(path)
    assert response.status_code == status
    error = xml(response).find("error")
    assert error.findtext("code") == str(status) and error.findtext("description")


def test_errors_in_json_are_a_list(client, setup):
    response = client.get("/open311/v2/services/nothing.json")
    assert response.status_code == 404
    assert response.json == [{"code": 404, "description": "service_code 'nothing' not found"}]


@pytest.mark.parametrize("changes, status, words", [
    ({"api_key": ""}, 403, "api_key"),
    ({"api_key": "crm_not-a-real-key"}, 403, "api_key"),
    ({"service_code": ""}, 400, "service_code"),
    ({"service_code": "unicorns"}, 404, "service_code"),
    ({"lat": "north", "long": "-2"}, 400, "lat"),
    ({"lat": "95", "long": "0"}, 400, "lat"),
    ({"lat": "nan", "long": "0"}, 400, "lat"),
    ({"lat": "", "long": "", "address_string": ""}, 400, "location"),
    ({"long": ""}, 400, "together"),
    ({"attribute[size]": ""}, 400, "attribute[size]"),
    ({"attribute[size]": "Enormous"}, 400, "attribute[size]"),
    ({"email": "not an email"}, 400, "email"),
    ({"phone": "call me maybe"}, 400, "phone"),
    ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
    ({"jurisdiction_id": "somewhere.else"}, 404, "jurisdiction"),
    ({"attribute[notes]": "x" * 6000}, 400, "too long"),
    ({f"attribute[a{n}]": "x" for n in range(101)}, 400, "at most"),
])
def test_bad_posts_are_spec_errors_never_500(client, setup, db, changes, status, words):
    response = fms_post(client, setup["key"], **changes)
    assert response.status_code == status, response.data
    assert words in xml(response).find("error").findtext("description")
    assert db.session.query(Open311Request).count() == 0


def test_a_revoked_key_is_refused(client, setup, db, runner):
    runner.invoke(args=["crm", "revoke-tokens", "fixmystreet@test.example"])
    assert fms_post(client, setup["key"]).status_code == 403


def test_our_jurisdiction_id_is_accepted(client, setup, app):
    ours = app.config.get("OPEN311_JURISDICTION") or app.config["CRM_MAIL_DOMAIN"]
    assert fms_post(client, setup["key"], jurisdiction_id=ours).status_code == 200


def test_a_reporter_known_by_phone_gets_the_case_on_their_timeline(client, setup, db):
    known = factories.customer("Sam Known", phone="07700 900555")
    response = client.post("/open311/v2/requests.json", data={
        "api_key": setup["key"], "service_code": "streetlight_fault", "address_string": "Market Place",
        "phone": "+44 7700 900555"})
    case = get_case(response.json[0]["service_request_id"])
    assert case.customer_id == known.id


def test_a_merged_duplicate_reports_the_kept_cases_progress(client, setup, db):
    from crm.cases.service import merge_cases

    first = xml(fms_post(client, setup["key"])).find("request").findtext("service_request_id")
    second = xml(fms_post(client, setup["key"])).find("request").findtext("service_request_id")
    merge_cases(get_case(second), get_case(first))
    post_public_update(get_case(first), "Inspector on site.")
    db.session.commit()
    shown = client.get(f"/open311/v2/requests/{second}.json").json[0]
    assert shown["status"] == "open" and shown["status_notes"] == f"Merged into {first}. Inspector on site."


def test_fixmystreet_fetches_updates_without_internal_notes(client, setup, db):
    from crm.cases.service import add_note

    request_id = xml(fms_post(client, setup["key"])).find("request").findtext("service_request_id")
    case = get_case(request_id)
    officer = setup["officer"]
    change_status(case, "in_progress", officer, reason="Crew 4, internal")
    add_note(case, "Internal: budget code 123", officer)
    post_public_update(case, "Crew booked.", officer)
    change_status(case, "resolved", officer)
    db.session.commit()
    doc = xml(client.get("/open311/v2/servicerequestupdates.xml?start_date=2000-01-01T00:00:00Z"))
    updates = [(u.findtext("service_request_id"), u.findtext("status"), u.findtext("description") or "")
               for u in doc.findall("request_update")]
    assert updates == [(request_id, "IN_PROGRESS", ""), (request_id, "IN_PROGRESS", "Crew booked."),
                       (request_id, "FIXED", "")]
    assert b"budget" not in client.get("/open311/v2/servicerequestupdates.json").data
    assert client.get("/open311/v2/servicerequestupdates.xml?start_date=soon").status_code == 400
