"""/account: sign-up, sign-in by password and by one-time link, own cases only, preferences, data export."""
import json
import re

from sqlalchemy import select

from crm.customers.merge import merge_customers
from crm.models import Conversation, CustomerIdentity, PossibleDuplicate, ResidentAccount
from tests import factories
from tests.conftest import csrf_from

PASSWORD = "a-long-resident-password"


def _token(client, path="/account"):
    return csrf_from(client.get(path).get_data(as_text=True))




def _sign_up(client, smtp, email, name="Pat Resident", password=PASSWORD):
    before = len(smtp.messages)
    response = client.post("/account/sign-up", data={"csrf_token": _token(client, "/account/sign-up"),
                                                      "name": name, "email": email, "password": password})
    assert response.status_code == 200 and "Check your email" in response.get_data(as_text=True)
    return smtp.link(smtp.wait_for(before + 1)[-1])


def _use_link(client, url):
    path = url.split("localhost", 1)[1]
    confirm = client.get(path)
    assert confirm.status_code == 200
    return client.post(path, data={"csrf_token": csrf_from(confirm.get_data(as_text=True))})


def _sign_in(client, email, password=PASSWORD):
    return client.post("/account/sign-in", data={"csrf_token": _token(client), "email": email, "password": password})


def test_sign_up_then_the_emailed_link_shows_the_residents_cases_across_channels(client, smtp, db, highways):
    resident = factories.customer(email="pat@example.org", phone="07700900111")
    phoned = factories.case(resident, title="Pothole reported by phone")
    link = _sign_up(client, smtp, "Pat@Example.org")
    envelope = smtp.messages[-1]
    assert envelope.rcpt_tos == ["pat@example.org"]
    assert ">Sign in to your account</h1>" in client.get("/account").get_data(as_text=True)  # not yet in
    assert _use_link(client, link).status_code == 303
    home = client.get("/account").get_data(as_text=True)
    assert phoned.reference in home and "Pothole reported by phone" in home
    account = db.session.scalar(select(ResidentAccount))
    identity = db.session.get(CustomerIdentity, account.identity_id)
    assert identity.kind == "portal" and identity.customer_id == resident.id
    # The link works once.
    path = link.split("localhost", 1)[1]
    assert client.get(path).status_code == 404


def test_password_sign_in_needs_the_proved_address_and_locks_after_failures(client, smtp, db, highways):
    link = _sign_up(client, smtp, "sam@example.org")
    unproved = _sign_in(client, "sam@example.org")
    assert unproved.status_code == 200 and "Check your email" in unproved.get_data(as_text=True)
    _use_link(client, link)
    client.post("/account/sign-out", data={"csrf_token": _token(client)})
    assert "Sign in to your account" in client.get("/account").get_data(as_text=True)
    assert _sign_in(client, "sam@example.org").status_code == 303
    client.post("/account/sign-out", data={"csrf_token": _token(client)})
    for _ in range(5):
        assert _sign_in(client, "sam@example.org", "wrong-password!").status_code == 401
    assert _sign_in(client, "sam@example.org").status_code == 401  # locked, even with the right one
    assert _sign_in(client, "nobody@example.org").status_code == 401


def test_signing_up_with_someone_elses_email_shows_nothing_of_theirs(client, smtp, db, highways):
    victim = factories.customer(email="victim@example.org")
    case = factories.case(victim)
    _sign_up(client, smtp, "victim@example.org", name="Attacker", password=PASSWORD)
    # Without the emailed link the password opens nothing.
    _sign_in(client, "victim@example.org")
    assert case.reference not in client.get("/account").get_data(as_text=True)
    assert client.get(f"/account/cases/{case.reference}").status_code == 302
    assert client.get("/account/data.json").status_code == 302
    # Signing up again sends the owner a sign-in link instead of a second account.
    _sign_up(client, smtp, "victim@example.org", name="Attacker again", password="another-password-1")
    assert "already have one" in smtp.text(smtp.messages[-1])
    assert db.session.scalar(select(ResidentAccount).where(ResidentAccount.name == "Attacker again")) is None


def test_a_resident_never_sees_another_residents_case(client, app, smtp, db, highways):
    mine = factories.customer(email="me@example.org")
    theirs = factories.customer(name="Other Person", email="them@example.org")
    my_case = factories.case(mine, title="My pothole")
    their_case = factories.case(theirs, title="Their private matter")
    _use_link(client, _sign_up(client, smtp, "me@example.org"))
    home = client.get("/account").get_data(as_text=True)
    assert my_case.reference in home and their_case.reference not in home and "Their private matter" not in home
    assert client.get(f"/account/cases/{my_case.reference}").status_code == 200
    for ref in (their_case.reference, their_case.reference.lower(), "CAS-999999", "../" + their_case.reference):
        response = client.get(f"/account/cases/{ref}")
        assert response.status_code == 404, ref
        assert "Their private matter" not in response.get_data(as_text=True)
    # Reopen and /track pages for their case are closed to me too.
    token = _token(client)
    assert client.post(f"/track/{their_case.reference}/reopen", data={"csrf_token": token, "reason": "x"}).status_code == 404
    assert client.get(f"/track/{their_case.reference}").status_code == 302
    exported = json.loads(client.get("/account/data.json").get_data(as_text=True))
    assert [c["reference"] for c in exported["cases"]] == [my_case.reference]
    assert "them@example.org" not in json.dumps(exported)


def test_a_forged_or_stale_session_is_not_signed_in(client, app, smtp, db, highways):
    mine = factories.customer(email="me@example.org")
    theirs = factories.customer(name="Other Person", email="them@example.org")
    their_case = factories.case(theirs)
    _use_link(client, _sign_up(client, smtp, "me@example.org"))
    other_account, _ = __import__("crm.portal.accounts", fromlist=["sign_up"]).sign_up("Them", "them@example.org", None)
    db.session.commit()
    # A session naming another account id without its stamp is dropped.
    with client.session_transaction() as session:
        session["resident"] = {"id": other_account.id, "stamp": "guessed"}
    assert "Sign in to your account" in client.get("/account").get_data(as_text=True)
    assert client.get(f"/account/cases/{their_case.reference}").status_code == 302
    # A cookie signed with another key is ignored.
    client.set_cookie("session", "eyJyZXNpZGVudCI6eyJpZCI6Mn19.fake.sig")
    assert "Sign in to your account" in client.get("/account").get_data(as_text=True)


def test_a_staff_merge_carries_the_account_to_the_surviving_record(client, smtp, db, highways, make_user):
    duplicate = factories.customer(email="me@example.org")
    survivor = factories.customer(name="Me Properly", phone="07700900222")
    phoned = factories.case(survivor, title="Phoned in")
    _use_link(client, _sign_up(client, smtp, "me@example.org"))
    merge_customers(duplicate, survivor, make_user("agent"))
    db.session.commit()
    assert phoned.reference in client.get("/account").get_data(as_text=True)


def test_preferences_and_data_download(client, smtp, db, highways):
    resident = factories.customer(email="me@example.org")
    case = factories.case(resident, description="Deep hole")
    _use_link(client, _sign_up(client, smtp, "me@example.org"))
    token = _token(client, "/account/preferences")
    bad = client.post("/account/preferences", data={"csrf_token": token, "preferred_channel": "pigeon"})
    assert bad.status_code == 400
    assert client.post("/account/preferences", data={"csrf_token": token, "preferred_channel": "phone"}
                       ).status_code == 303
    db.session.expire_all()
    assert db.session.get(type(resident), resident.id).preferred_channel == "phone"
    assert db.session.scalar(select(ResidentAccount)).email_updates is False
    download = client.get("/account/data.json")
    assert download.headers["Content-Disposition"].startswith("attachment")
    data = json.loads(download.get_data(as_text=True))
    assert data["account"]["email"] == "me@example.org"
    assert data["cases"][0]["reference"] == case.reference and data["cases"][0]["description"] == "Deep hole"
    assert {"kind": "email", "value": "me@example.org"} in data["customer"]["identities"]


def test_a_signed_in_resident_sends_a_form_without_retyping_their_details(client, smtp, db, pothole_form):
    resident = factories.customer(email="me@example.org")
    _use_link(client, _sign_up(client, smtp, "me@example.org"))
    page = client.get("/forms/report-a-pothole").get_data(as_text=True)
    assert "You are signed in as" in page and 'name="email"' not in page
    response = client.post("/forms/report-a-pothole", data={
        "csrf_token": csrf_from(page), "location": "Corner of Fell View", "size": "Smaller than a dinner plate"})
    assert response.status_code == 303
    reference = re.search(r"CAS-\d+", client.get(response.headers["Location"]).get_data(as_text=True)).group(0)
    assert reference in client.get("/account").get_data(as_text=True)
    from crm.models import Case
    assert db.session.scalar(select(Case).where(Case.reference == reference)).customer_id == resident.id


def test_bad_account_input_is_a_4xx(client, smtp, highways):
    token = _token(client, "/account/sign-up")
    assert client.post("/account/sign-up", data={"csrf_token": token, "name": "", "email": ""}).status_code == 400
    assert client.post("/account/sign-up", data={"csrf_token": token, "name": "A", "email": "nope"}).status_code == 400
    assert client.post("/account/sign-up", data={"csrf_token": token, "name": "A", "email": "a@example.org",
                                                 "password": "short"}).status_code == 400
    assert client.post("/account/sign-in", data={"csrf_token": token}).status_code == 400
    assert client.post("/account/sign-in-link", data={"csrf_token": token, "link_email": "x"}).status_code == 400
    assert client.get("/account/link/" + "x" * 500).status_code == 404
    assert client.post("/account/link/nonsense", data={"csrf_token": token}).status_code == 404
    # Asking for a link for an address with no account answers the same as for one that has one.
    unknown = client.post("/account/sign-in-link", data={"csrf_token": token, "link_email": "ghost@example.org"})
    assert unknown.status_code == 200 and "If there is an account" in unknown.get_data(as_text=True)


def test_the_email_updates_preference_is_readable_by_other_areas(client, smtp, db, highways):
    from crm.portal.accounts import wants_email_updates

    resident = factories.customer(email="me@example.org")
    stranger = factories.customer(email="no-account@example.org")
    _use_link(client, _sign_up(client, smtp, "me@example.org"))
    assert wants_email_updates(resident) and wants_email_updates(stranger)
    client.post("/account/preferences", data={"csrf_token": _token(client, "/account/preferences"),
                                              "preferred_channel": "email"})
    assert not wants_email_updates(resident) and wants_email_updates(stranger)


# --- account takeover through a claimed identity (issue 10) -------------------------------

def _victim(highways):
    """A resident with an address, a phone and an adult social care-like case of their own."""
    victim = factories.customer("Victoria Stone", email="victoria@example.org", phone="07700 900002",
                                address={"line1": "3 Quiet Lane", "postcode": "CA1 1AA"})
    return victim, factories.case(victim, title="Victoria's own pothole")


def _attacker_sees_nothing_of(client, smtp, victim, victim_case, email):
    """Sign up with the attacker's email, click the link, and check the victim's data stays hidden."""
    assert _use_link(client, _sign_up(client, smtp, email, name="Mallory Smith")).status_code == 303
    home = client.get("/account").get_data(as_text=True)
    assert victim_case.reference not in home and "Victoria" not in home
    data = client.get("/account/data.json").get_data(as_text=True)
    assert "Quiet Lane" not in data and "+447700900002" not in data and victim_case.reference not in data
    assert client.get(f"/account/cases/{victim_case.reference}").status_code == 404


def test_a_webchat_with_a_new_email_and_someone_elses_phone_cannot_open_their_account(
        app, client, smtp, db, highways, database_url):
    from tests.support import ServerProcess
    from tests.webchat.conftest import Client

    victim, victim_case = _victim(highways)
    server = ServerProcess(database_url)
    try:
        resident = Client(server.url, "/webchat")
        try:
            ack = resident.call("start", {"name": "Mallory Smith", "email": "mallory@example.net",
                                          "phone": "07700 900002", "message": "hello"})
        finally:
            resident.close()
    finally:
        server.stop()
    assert "conversation_id" in ack, ack
    db.session.expire_all()

    chat = db.session.get(Conversation, ack["conversation_id"])
    assert chat.customer_id != victim.id  # not joined to the phone's owner
    assert {i.value for i in db.session.get(type(victim), victim.id).identities} == {
        "victoria@example.org", "+447700900002"}  # nothing claimed was added to the victim
    assert db.session.scalar(select(PossibleDuplicate.other_id)) == victim.id  # staff decide
    _attacker_sees_nothing_of(client, smtp, victim, victim_case, "mallory@example.net")


def test_a_web_form_with_someone_elses_phone_cannot_open_their_account_or_mail_them(
        client, smtp, db, pothole_form):
    from crm.models import Case
    from tests.portal.test_forms import GOOD, _post

    victim, victim_case = _victim(None)
    before = len(smtp.messages)
    response = _post(client, "report-a-pothole", dict(GOOD, name="Mallory Smith", email="mallory@example.net",
                                                      phone="07700 900002"))
    assert response.status_code == 303
    report = db.session.scalar(select(Case).order_by(Case.id.desc()).limit(1))
    assert report.customer_id != victim.id and report.contact_email == "mallory@example.net"
    confirmations = smtp.wait_for(before + 1)[before:]
    assert [m.rcpt_tos for m in confirmations] == [["mallory@example.net"]]
    _attacker_sees_nothing_of(client, smtp, victim, victim_case, "mallory@example.net")


def test_a_report_joined_by_a_shared_phone_alone_is_never_mailed_to_the_record_holder(client, smtp, db, highways,
                                                                                     make_user):
    """A phone-only report with no name joins the phone's holder, but its news goes nowhere by email."""
    import time

    from crm.cases.notify import notify_customer_of_update
    from crm.customers.identity import resolve_customer, set_case_contact
    from crm.models import CaseEvent

    victim, _ = _victim(highways)
    reporter = resolve_customer(None, None, "07700 900002", source="open311")
    assert reporter.id == victim.id
    report = factories.case(reporter, title="Someone else's pothole")
    set_case_contact(report, None, "07700 900002")
    db.session.commit()
    before = len(smtp.messages)
    event = CaseEvent(case_id=report.id, customer_id=report.customer_id, kind="public_update", body="Filled",
                      public=True)
    db.session.add(event)
    assert notify_customer_of_update(report, event) is False
    db.session.commit()
    time.sleep(0.5)
    assert len(smtp.messages) == before
