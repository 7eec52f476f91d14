"""/track: a case's public progress for its reference plus the email or phone on it; reopen; guessing throttled."""
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from crm.cases.service import add_event, change_status, post_public_update
from crm.models import Case, CaseEvent, Contact, utcnow
from crm.portal.track import clean_reference
from tests import factories
from tests.conftest import csrf_from


def _track(client, reference, contact):
    token = csrf_from(client.get("/track").get_data(as_text=True))
    return client.post("/track", data={"csrf_token": token, "reference": reference, "contact": contact})


def _resolved_case(db, resident, resolved_days_ago=1):
    case = factories.case(resident)
    for status in ("open", "in_progress", "resolved"):
        change_status(case, status)
    case.resolved_at = utcnow() - timedelta(days=resolved_days_ago)
    db.session.commit()
    return case


def test_reference_and_email_show_the_public_timeline_only(client, db, highways):
    resident = factories.customer(email="pat@example.org", phone="07700900111")
    case = factories.case(resident, description="Hole by the school gates")
    change_status(case, "open")
    add_event(case, "note", body="Internal: resident is a councillor's cousin")
    post_public_update(case, "A crew is booked for Tuesday.")
    db.session.commit()
    response = _track(client, case.reference.lower(), "PAT@example.org")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert case.reference in page and "A crew is booked for Tuesday." in page
    assert "Status changed to open" in page and "Expected by" in page and "not a fixed date" in page
    assert "councillor" not in page
    # A phone number in national format matches the E.164 identity too.
    other = client.application.test_client()
    assert _track(other, case.reference, "07700 900111").status_code == 303


def test_a_wrong_email_a_wrong_reference_and_another_residents_email_look_the_same(client, db, highways):
    owner = factories.customer(email="owner@example.org")
    stranger = factories.customer(name="Nosy Neighbour", email="nosy@example.org")
    case = factories.case(owner)
    factories.case(stranger, title="Nosy's own pothole")
    answers = [_track(client, case.reference, "nosy@example.org"),
               _track(client, "CAS-999999", "owner@example.org"),
               _track(client, case.reference, "07700900999")]
    assert [r.status_code for r in answers] == [404, 404, 404]
    # The CSRF token carries a timestamp: answers a second apart differ there and nowhere else.
    texts = {re.sub(r'name="csrf_token" value="[^"]*"', "", r.get_data(as_text=True))
             .replace(case.reference, "REF").replace("CAS-999999", "REF")
             .replace("nosy@example.org", "X").replace("owner@example.org", "X").replace("07700900999", "X")
             for r in answers}
    assert len(texts) == 1
    assert client.get(f"/track/{case.reference}").status_code == 302  # not proved: back to the form


def test_empty_and_junk_input_is_a_400_not_a_500(client, highways):
    assert _track(client, "", "").status_code == 400
    assert _track(client, "x" * 5000, "@@@" * 500).status_code == 404
    assert _track(client, "CAS-000001\x00", "\u202e@example.org").status_code == 404
    assert client.get("/track/" + "A" * 3000).status_code == 302


def test_guessing_one_reference_is_throttled_from_any_address(app, client, db, highways):
    app.config["PORTAL_TRACK_REFERENCE_LIMIT"] = "3 per hour"
    owner = factories.customer(email="owner@example.org")
    case = factories.case(owner)
    statuses = [_track(client, case.reference, f"guess{n}@example.org").status_code for n in range(4)]
    assert statuses == [404, 404, 404, 429]
    # The right answer from a different address is still refused while the reference is locked.
    other = app.test_client()
    token = csrf_from(other.get("/track").get_data(as_text=True))
    locked = other.post("/track", data={"csrf_token": token, "reference": case.reference, "contact": "owner@example.org"},
                        environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert locked.status_code == 429


def test_many_lookups_from_one_address_are_throttled(app, client, highways):
    app.config["PORTAL_TRACK_LIMIT"] = "4 per minute"
    statuses = [_track(client, f"CAS-00000{n}", "a@example.org").status_code for n in range(5)]
    assert statuses[-1] == 429 and 429 not in statuses[:4]


def test_this_is_not_fixed_reopens_a_resolved_case_within_the_window(client, db, highways):
    resident = factories.customer(email="pat@example.org")
    case = _resolved_case(db, resident)
    found = _track(client, case.reference, "pat@example.org")
    page = client.get(found.headers["Location"]).get_data(as_text=True)
    assert "This is not fixed" in page
    token = csrf_from(page)
    empty = client.post(f"/track/{case.reference}/reopen", data={"csrf_token": token, "reason": ""})
    assert empty.status_code == 400 and "Tell us what is still wrong" in empty.get_data(as_text=True)
    done = client.post(f"/track/{case.reference}/reopen", data={"csrf_token": token, "reason": "Still a hole"})
    assert done.status_code == 303
    db.session.expire_all()
    reopened = db.session.get(Case, case.id)
    assert reopened.status == "open"
    event = db.session.scalar(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id.desc()))
    assert event.to_value == "open" and event.body == "Still a hole"
    assert db.session.scalar(select(Contact).where(Contact.case_id == case.id, Contact.channel == "web_form"))


def test_no_reopen_after_the_window_or_without_proof(client, app, db, highways):
    resident = factories.customer(email="pat@example.org")
    late = _resolved_case(db, resident, resolved_days_ago=60)
    found = _track(client, late.reference, "pat@example.org")
    page = client.get(found.headers["Location"]).get_data(as_text=True)
    assert "This is not fixed" not in page
    token = csrf_from(client.get("/track").get_data(as_text=True))
    refused = client.post(f"/track/{late.reference}/reopen", data={"csrf_token": token, "reason": "Still bad"})
    assert refused.status_code == 409
    fresh = _resolved_case(db, resident)
    stranger = app.test_client()
    token = csrf_from(stranger.get("/track").get_data(as_text=True))
    assert stranger.post(f"/track/{fresh.reference}/reopen", data={"csrf_token": token, "reason": "x"}).status_code == 404
    db.session.expire_all()
    assert db.session.get(Case, fresh.id).status == "resolved"


def test_times_are_shown_in_uk_time_and_the_page_is_not_cached(client, db, highways):
    resident = factories.customer(email="pat@example.org")
    case = factories.case(resident)
    created = next(e for e in case.events if e.kind == "created")
    created.occurred_at = datetime(2026, 7, 1, 8, 30, tzinfo=timezone.utc)  # 09:30 British Summer Time
    db.session.commit()
    found = _track(client, case.reference, "pat@example.org")
    response = client.get(found.headers["Location"])
    assert "1 July 2026, 09:30" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


def test_a_report_joined_to_someone_elses_follows_its_status_without_showing_it(client, db, highways, smtp):
    from crm.cases.service import merge_cases

    mine = factories.customer(email="pat@example.org")
    theirs = factories.customer(name="First Reporter", email="first@example.org")
    lead = factories.case(theirs, title="Pothole reported first", description="Private detail of the first report")
    duplicate = factories.case(mine, title="Same pothole")
    change_status(lead, "open")
    change_status(lead, "in_progress")
    merge_cases(duplicate, lead)
    db.session.commit()
    found = _track(client, duplicate.reference, "pat@example.org")
    page = client.get(found.headers["Location"]).get_data(as_text=True)
    assert "Joined with another report" in page and "In progress" in page and "Expected by" in page
    assert lead.reference not in page and "First Reporter" not in page and "Private detail" not in page
    assert "This is not fixed" not in page


@pytest.mark.parametrize("typed", ["CAS-000173", "CAS000173", "cas 173", "CAS-173", " cas-173 ", "Cas 0173",
                                   "cas.173", "CAS - 000173"])
def test_a_reference_is_read_the_way_residents_type_it(typed):
    assert clean_reference(typed) == "CAS-000173"


def test_other_text_is_not_mistaken_for_a_reference():
    assert clean_reference("CAS-12X") == "CAS-12X" and clean_reference("") == ""
