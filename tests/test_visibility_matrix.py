"""Role × resource × read path, generated from the visibility policy: every path answers as the policy says.

Each row names a read path, the object it reads and the policy predicate that decides it. For every
viewer (each staff role, and anonymous callers) the expected answer is computed from crm.visibility
and the endpoint's own role check; the test then calls the real path. A path that forgets the
policy shows a secret the predicate forbids, or refuses what it allows. `test_every_path_with_an_id_is_covered`
walks the app's URL map so a new path that takes a customer, case, conversation or file id fails
until it is listed here (or exempted with a reason).
"""
import json

import pytest

from crm import visibility
from crm.extensions import db
from crm.records.access import is_records_officer
from tests import factories
from tests.conftest import csrf_from
from tests.visibility_world import build_world

ROLES = ["agent", "agent2", "supervisor", "admin", "highways_officer", "asc_officer", "records", None]
REDACTED_ASC = "restricted case — adult social care"

# (path id, endpoint, url, resource key, predicate, secret that must show exactly when allowed)
ACCESS_ROWS = [
    ("page customer rita", "console.customer", lambda w: f"/customers/{w.customers['rita'].id}",
     ("customers", "rita"), visibility.can_see_customer, "rita@vis.example"),
    ("page customer details rita", "console.customer_details", lambda w: f"/customers/{w.customers['rita'].id}/details",
     ("customers", "rita"), visibility.can_see_customer, "rita@vis.example"),
    ("assisted forms rita", "form_staff.assisted_list", lambda w: f"/customers/{w.customers['rita'].id}/forms",
     ("customers", "rita"), visibility.can_see_customer, "Rita Restricted"),
    ("records page rita", "records.customer_page", lambda w: f"/records/customers/{w.customers['rita'].id}",
     ("customers", "rita"), visibility.can_see_customer, "Rita Restricted"),
    ("api customer rita", "customers.read", lambda w: f"/api/v1/customers/{w.customers['rita'].id}",
     ("customers", "rita"), visibility.can_see_customer, "rita@vis.example"),
    ("api timeline rita", "customers.timeline", lambda w: f"/api/v1/customers/{w.customers['rita'].id}/timeline",
     ("customers", "rita"), visibility.can_see_customer, "SECRET-RITA-TITLE"),
    ("page case asc", "cases.case_page", lambda w: f"/cases/{w.cases['asc'].reference}",
     ("cases", "asc"), visibility.can_see_case, "SECRET-ASC-DESCRIPTION"),
    ("api case asc", "cases_api.read", lambda w: f"/api/v1/cases/{w.cases['asc'].reference}",
     ("cases", "asc"), visibility.can_see_case, "SECRET-ASC-NOTE"),
    ("page case rita", "cases.case_page", lambda w: f"/cases/{w.cases['rita'].reference}",
     ("cases", "rita"), visibility.can_see_case, "SECRET-RITA-DESCRIPTION"),
    ("api case rita", "cases_api.read", lambda w: f"/api/v1/cases/{w.cases['rita'].reference}",
     ("cases", "rita"), visibility.can_see_case, "SECRET-RITA-DESCRIPTION"),
    ("api case pothole", "cases_api.read", lambda w: f"/api/v1/cases/{w.cases['pothole'].reference}",
     ("cases", "pothole"), visibility.can_see_case, "Deep pothole"),
    ("api conversation asc email", "conversations.read",
     lambda w: f"/api/v1/conversations/{w.conversations['asc_email'].id}",
     ("conversations", "asc_email"), visibility.can_see_conversation, "SECRET-ASC-EMAIL-NOTE"),
    ("page conversation asc email", "email.conversation",
     lambda w: f"/email/conversations/{w.conversations['asc_email'].id}",
     ("conversations", "asc_email"), visibility.can_see_conversation, "SECRET-ASC-EMAIL"),
    ("api conversation asc chat", "conversations.read",
     lambda w: f"/api/v1/conversations/{w.conversations['asc_chat'].id}",
     ("conversations", "asc_chat"), visibility.can_see_conversation, "SECRET-ASC-CHAT"),
    ("api conversation live chat", "conversations.read",
     lambda w: f"/api/v1/conversations/{w.conversations['live_chat'].id}",
     ("conversations", "live_chat"), visibility.can_see_conversation, "My bin was missed"),
    ("api conversation rita", "conversations.read",
     lambda w: f"/api/v1/conversations/{w.conversations['rita_email'].id}",
     ("conversations", "rita_email"), visibility.can_see_conversation, "SECRET-RITA-EMAIL"),
    ("page conversation pothole", "email.conversation",
     lambda w: f"/email/conversations/{w.conversations['pothole_email'].id}",
     ("conversations", "pothole_email"), visibility.can_see_conversation, "Photo of the pothole"),
    ("who else is replying: asc email", "email.replying",
     lambda w: f"/email/conversations/{w.conversations['asc_email'].id}/replying",
     ("conversations", "asc_email"), visibility.can_see_conversation, None),
    ("download asc email file", "email.attachment", lambda w: f"/email/attachments/{w.attachments['asc_email'].id}",
     ("attachments", "asc_email"), visibility.can_see_attachment, None),
    ("download asc case file", "email.attachment", lambda w: f"/email/attachments/{w.attachments['asc_case_file'].id}",
     ("attachments", "asc_case_file"), visibility.can_see_attachment, None),
    ("download chat file", "email.attachment", lambda w: f"/email/attachments/{w.attachments['asc_chat'].id}",
     ("attachments", "asc_chat"), visibility.can_see_attachment, None),
    ("download pothole file", "email.attachment", lambda w: f"/email/attachments/{w.attachments['pothole_email'].id}",
     ("attachments", "pothole_email"), visibility.can_see_attachment, None),
]

# Paths whose answer is a page or list holding many objects: the secret shows exactly when allowed,
# and where it may not show, the redacted words do (when given).
CONTENT_ROWS = [
    ("api timeline jane: asc case", "customers.timeline", lambda w: f"/api/v1/customers/{w.customers['jane'].id}/timeline",
     ("cases", "asc"), visibility.can_see_case, "SECRET-ASC-TITLE", REDACTED_ASC),
    ("api timeline jane: asc note", "customers.timeline", lambda w: f"/api/v1/customers/{w.customers['jane'].id}/timeline",
     ("cases", "asc"), visibility.can_see_case, "SECRET-ASC-NOTE", None),
    ("api timeline jane: asc contact", "customers.timeline",
     lambda w: f"/api/v1/customers/{w.customers['jane'].id}/timeline",
     ("contacts", "asc_email"), visibility.can_see_contact, "SECRET-ASC-CONTACT", None),
    ("page timeline jane: asc case", "console.customer", lambda w: f"/customers/{w.customers['jane'].id}",
     ("cases", "asc"), visibility.can_see_case, "SECRET-ASC-TITLE", REDACTED_ASC),
    ("page timeline jane: asc note", "console.customer", lambda w: f"/customers/{w.customers['jane'].id}",
     ("cases", "asc"), visibility.can_see_case, "SECRET-ASC-NOTE", None),
    ("page jane: vulnerability", "console.customer", lambda w: f"/customers/{w.customers['jane'].id}",
     ("customers", "jane"), visibility.can_see_vulnerability, "SECRET-VULNERABILITY", None),
    ("conversation page timeline: asc", "email.conversation",
     lambda w: f"/email/conversations/{w.conversations['pothole_email'].id}",
     ("cases", "asc"), visibility.can_see_case, "SECRET-ASC-TITLE", None),
    ("api search by name: rita", "customers.search", lambda w: "/api/v1/customers?q=Rita",
     ("customers", "rita"), visibility.can_see_customer, "rita@vis.example", "Restricted record"),
    ("page search by name: rita", "console.search", lambda w: "/console?q=Rita",
     ("customers", "rita"), visibility.can_see_customer, "rita@vis.example", "Restricted record"),
    ("api search by asc reference", "customers.search", lambda w: f"/api/v1/customers?q={w.cases['asc'].reference}",
     ("cases", "asc"), visibility.can_see_case, "jane@vis.example", None),
    ("page search by asc reference", "console.search", lambda w: f"/console?q={w.cases['asc'].reference}",
     ("cases", "asc"), visibility.can_see_case, "jane@vis.example", None),
    ("api case list: asc", "cases_api.list_cases", lambda w: "/api/v1/cases?service=adult_social_care",
     ("cases", "asc"), visibility.can_see_case, "SECRET-ASC-TITLE", None),
    ("api case list: rita", "cases_api.list_cases", lambda w: "/api/v1/cases?service=highways",
     ("cases", "rita"), visibility.can_see_case, "SECRET-RITA-TITLE", None),
    ("page work list: asc", "cases.work_list_page", lambda w: "/cases?service=adult_social_care",
     ("cases", "asc"), visibility.can_see_case, "SECRET-ASC-TITLE", None),
    ("inbox: asc email", "email.inbox", lambda w: "/email/", ("conversations", "asc_email"),
     visibility.can_see_conversation, "About my neighbour", None),
    ("inbox: rita email", "email.inbox", lambda w: "/email/", ("conversations", "rita_email"),
     visibility.can_see_conversation, "SECRET-RITA-SUBJECT", None),
]

OPEN311_ROWS = ["pothole", "form_pothole", "phoned", "asc", "rita"]

# Read paths with an id that this matrix does not call, and why.
EXEMPT = {
    "email.attachment_thumbnail": "same check as email.attachment (one helper); covered in tests/cases",
    "email.quarantined_message": "admins only: raw inbound mail that matched no customer",
    "email.raw_message": "admins only: raw inbound mail that matched no customer",
    "portal.form_page": "public web forms, no record content",
    "form_staff.assisted_form": "the same caller check as form_staff.assisted_list (one helper)",
    "help.article": "public help articles, no record content",
    "portal.form_step": "public web forms, no record content",
    "portal.form_confirmation": "the resident's own submission (its reference is in their session)",
    "cases.new_case": "a form; the customer is checked (test_raising_a_case_for_a_restricted_customer)",
    "portal.account_case_view": "residents' own cases (crm/portal, visibility.Resident), tests/portal",
    "portal.track_case": "the reference and the email/phone on it prove the case (tests/portal/test_track.py)",
    "portal.sign_in_link": "a sign-in secret, no record content",
    "open311.get_request": "OPEN311 rows below",
    "open311.token": "the poster's secret token gives back only the reference it became",
    "open311.service_definition": "services, no case content",
    "open311.services_or_requests": "OPEN311 rows below",
    "open311.discovery": "no content",
    "open311.not_found": "no content",
    "admin.user": "staff records, admins only",
    "cases.routing_rule": "configuration, admins only",
    "form_staff.edit_form_definition": "configuration",
    "supervisor.report_csv": "aggregate figures only (supervisors), no record content",
    "reports.report_table": "aggregate figures only (supervisors), no record content",
}
COVERED = {row[1] for row in ACCESS_ROWS} | {row[1] for row in CONTENT_ROWS}
ID_ARGUMENTS = {"customer_id", "conversation_id", "reference", "attachment_id", "inbound_id", "name", "secret",
                "slug", "form_id", "user_id", "rule_id", "table_name", "step"}


@pytest.fixture
def world(app):
    return build_world()


def _client_for(app, world, role):
    client = app.test_client()
    if role is None:
        return client, {}
    user = world.users[role]
    page = client.get("/login")
    response = client.post("/login", data={"email": user.email, "password": "correct-horse-battery",
                                           "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client, {"Authorization": f"Bearer {factories.token(user)}"}


def _role_allows(app, endpoint, user) -> bool:
    if endpoint.startswith("records."):
        return user is not None and is_records_officer(user)  # the records area's own check: admins excluded
    allowed = getattr(app.view_functions[endpoint], "allowed_roles", None)
    return user is not None and (allowed is None or user.has_role(*allowed))


def _fresh(world, key):
    kind, name = key
    obj = getattr(world, kind)[name]
    return db.session.get(type(obj), obj.id)


def _get(client, headers, url):
    if url.startswith("/api/"):
        return client.get(url, headers=headers)
    return client.get(url)


def _text(response) -> str:
    """Return the body as text (JSON decoded, so non-ASCII reads as written; files as replaced bytes)."""
    if response.is_json:
        return json.dumps(response.get_json(), ensure_ascii=False)
    return response.get_data().decode("utf-8", "replace")


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_every_read_path_answers_as_the_policy_says(app, world, role):
    client, headers = _client_for(app, world, role)
    user = world.users.get(role)
    failures = []
    for name, endpoint, url, key, predicate, secret in ACCESS_ROWS:
        if endpoint not in app.view_functions:
            continue  # an area not in this build
        allowed = _role_allows(app, endpoint, user) and predicate(user, _fresh(world, key))
        response = _get(client, headers, url(world))
        body = _text(response)
        if allowed and response.status_code != 200:
            failures.append(f"{name}: allowed, got {response.status_code}")
        if not allowed and response.status_code not in (302, 401, 403, 404):
            failures.append(f"{name}: refused by the policy, got {response.status_code}")
        if not allowed and secret and secret in body:
            failures.append(f"{name}: refused but shows {secret}")
        if allowed and secret and secret not in body:
            failures.append(f"{name}: allowed but {secret} missing")
    for name, endpoint, url, key, predicate, secret, redacted in CONTENT_ROWS:
        if not _role_allows(app, endpoint, user):
            continue
        allowed = predicate(user, _fresh(world, key))
        response = _get(client, headers, url(world))
        body = _text(response)
        if response.status_code != 200:
            failures.append(f"{name}: got {response.status_code}")
            continue
        if allowed != (secret in body):
            failures.append(f"{name}: policy says {'show' if allowed else 'hide'} {secret}")
        if redacted and not allowed and redacted.lower() not in body.lower():
            failures.append(f"{name}: hidden without the redacted entry {redacted!r}")
    assert not failures, "\n".join(failures)


def test_open311_publishes_only_public_reports_of_ordinary_services(app, world, client):
    refs = {name: world.cases[name].reference for name in OPEN311_ROWS}
    listed = client.get(f"/open311/v2/requests.json?service_request_id={','.join(refs.values())}").get_json()
    listed_refs = {item["service_request_id"] for item in listed}
    for name, ref in refs.items():
        public = visibility.open311_public(db.session.get(type(world.cases[name]), world.cases[name].id))
        one = client.get(f"/open311/v2/requests/{ref}.json")
        assert (one.status_code == 200) == public, (name, one.status_code)
        assert (ref in listed_refs) == public, name
    assert listed_refs == {refs["pothole"], refs["form_pothole"]}
    everything = client.get("/open311/v2/requests.json").get_data(as_text=True)
    for secret in ("SECRET", "FORM-ANSWERS", "jane@vis.example", "Back Lane"):
        assert secret not in everything


def test_every_path_with_an_id_is_covered(app):
    missing = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or not (set(rule.arguments) & ID_ARGUMENTS):
            continue
        if rule.endpoint.startswith(("static", "api-docs")) or rule.endpoint in COVERED | set(EXEMPT):
            continue
        missing.append(f"{rule.endpoint} {rule.rule}")
    assert not missing, "read paths with an id the visibility matrix does not cover:\n" + "\n".join(missing)
