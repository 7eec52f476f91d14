"""Merging duplicate cases and splitting a contact off, losing nothing; nearby cases suggested."""
import pytest

from crm.cases.service import (
    attach_contact, change_status, merge_cases, nearby_open_cases, open_case, post_public_update, split_contact,
)
from crm.customers.timeline import record_contact, timeline_page
from crm.errors import Conflict, ValidationFailed
from crm.models import AuditLog, Case, CaseEvent, Contact
from tests import factories


@pytest.fixture
def highways(app):
    return factories.service("highways", "Highways", categories=(("pothole", "Pothole"), ("flooding", "Flooding")))


def raise_with_contact(customer, title, **kw):
    contact = record_contact(customer, "phone", summary=title, category="pothole", outcome="case_raised")
    return open_case(customer, "highways", "pothole", title, contact=contact, **kw), contact


def test_merging_moves_contacts_keeps_both_histories_and_is_audited(highways, db, make_user):
    officer = make_user("supervisor")
    anna, ben = factories.customer("Anna"), factories.customer("Ben")
    kept, anna_call = raise_with_contact(anna, "Pothole on Fell View", priority="normal")
    duplicate, ben_call = raise_with_contact(ben, "Hole in the road, Fell View", priority="high")
    db.session.commit()
    merge_cases(duplicate, kept, officer, "Same pothole")
    db.session.commit()
    assert duplicate.merged_into_id == kept.id and duplicate.status == "closed"
    assert kept.priority == "high"
    assert {c.id for c in db.session.query(Contact).filter_by(case_id=kept.id)} == {anna_call.id, ben_call.id}
    assert [e.kind for e in duplicate.events][-1] == "merged"
    merged_in = [e for e in kept.events if e.kind == "merged_in"]
    assert merged_in and merged_in[0].from_value == duplicate.reference
    # Ben's timeline still holds his own case's history.
    entries, _ = timeline_page(ben.id, 50)
    assert {row.kind for kind, row in entries if kind == "case_event"} >= {"created", "merged"}
    assert db.session.query(AuditLog).filter_by(action="case.merge").one().details["moved"]["contacts"] == 1


def test_a_merged_case_cannot_be_merged_again_changed_or_merged_into_itself(highways, db):
    customer = factories.customer()
    a, _ = raise_with_contact(customer, "A")
    b, _ = raise_with_contact(customer, "B")
    c, _ = raise_with_contact(customer, "C")
    with pytest.raises(ValidationFailed):
        merge_cases(a, a)
    merge_cases(a, b)
    with pytest.raises(Conflict):
        merge_cases(a, c)
    with pytest.raises(Conflict):
        merge_cases(c, a)
    with pytest.raises(Conflict):
        change_status(a, "open")
    with pytest.raises(Conflict):
        post_public_update(a, "hello")


def test_splitting_a_contact_makes_a_case_of_its_own(highways, db, make_user):
    officer = make_user("supervisor")
    anna, ben = factories.customer("Anna"), factories.customer("Ben")
    case, anna_call = raise_with_contact(anna, "Pothole on Fell View")
    ben_call = record_contact(ben, "phone", summary="Flooding on Fell View", category="flooding")
    attach_contact(case, ben_call, officer)
    db.session.commit()
    new_case = split_contact(case, ben_call, officer, category="flooding", title="Flooding on Fell View")
    db.session.commit()
    assert new_case.customer_id == ben.id and new_case.category == "flooding"
    assert db.session.get(Contact, ben_call.id).case_id == new_case.id
    assert db.session.get(Contact, anna_call.id).case_id == case.id
    assert [e.kind for e in case.events][-1] == "split"
    assert "split_from" in [e.kind for e in new_case.events]
    assert db.session.query(AuditLog).filter_by(action="case.split").count() == 1


def test_a_contact_not_on_the_case_cannot_be_split_off(highways, db):
    customer = factories.customer()
    case, _ = raise_with_contact(customer, "A")
    stray = record_contact(customer, "phone", summary="other")
    with pytest.raises(ValidationFailed):
        split_contact(case, stray)


def test_nearby_open_cases_of_the_same_category_are_suggested(highways, db):
    customer = factories.customer()
    near, _ = raise_with_contact(customer, "Pothole", latitude=54.8925, longitude=-2.9329)
    far, _ = raise_with_contact(customer, "Pothole far away", latitude=54.90, longitude=-2.95)
    done, _ = raise_with_contact(customer, "Fixed pothole", latitude=54.8926, longitude=-2.9330)
    done.status = "resolved"
    other = open_case(customer, "highways", "flooding", "Flood", latitude=54.8925, longitude=-2.9329)
    db.session.commit()
    found = nearby_open_cases("pothole", latitude=54.8927, longitude=-2.9331)
    assert found == [near]
    assert other not in nearby_open_cases("pothole", latitude=54.8925, longitude=-2.9329, radius_m=5000)
    assert far in nearby_open_cases("pothole", latitude=54.8925, longitude=-2.9329, radius_m=5000)


def test_attaching_a_contact_records_it_on_the_existing_case(highways, db, make_user):
    agent = make_user("agent")
    case, _ = raise_with_contact(factories.customer("Anna"), "Pothole")
    ben = factories.customer("Ben")
    call = record_contact(ben, "phone", summary="Same pothole", category="pothole")
    event = attach_contact(case, call, agent)
    db.session.commit()
    assert call.case_id == case.id and call.outcome == "case_raised"
    assert event.kind == "contact_attached" and "Ben" in event.body
    assert db.session.query(Case).count() == 1
    assert db.session.query(CaseEvent).filter_by(kind="contact_attached").count() == 1
