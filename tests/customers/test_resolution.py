"""Identity you can trust: a touch joins a record only on strong evidence; otherwise staff decide."""
import pytest
from sqlalchemy import func, select

from crm.customers.identity import names_agree, resolve_customer, resolve_touch
from crm.extensions import db
from crm.models import Customer, CustomerIdentity, PossibleDuplicate
from tests import factories


@pytest.mark.parametrize("given,held,expected", [
    ("Jane Doe", "jane doe", True), ("Doe, Jane", "Jane Doe", True), ("J Doe", "Jane Doe", True),
    ("Mrs Jane Doe", "Jane Doe", True), ("Jane Mary Doe", "Jane Doe", True), ("Jane", "Jane Doe", None),
    ("John Doe", "Jane Doe", False), ("Mallory Smith", "Jane Doe", False), ("", "Jane Doe", None),
])
def test_names_agree_ignoring_order_titles_and_initials(given, held, expected):
    assert names_agree(given, held) is expected


def test_one_claimed_phone_against_a_different_name_makes_a_new_customer_and_queues_a_duplicate(app):
    victim = factories.customer("Victoria Stone", phone="07700 900002")
    resolution = resolve_touch("Mallory Smith", "mallory@example.net", "07700 900002", source="chat")
    db.session.commit()
    made = resolution.customer
    assert made.id != victim.id and resolution.matched == "new"
    assert made.identity_values("email") == ["mallory@example.net"]
    assert made.identity_values("phone") == []  # the phone stays the victim's alone
    assert {i.value for i in db.session.get(Customer, victim.id).identities} == {"+447700900002"}
    duplicate = db.session.scalar(select(PossibleDuplicate))
    assert (duplicate.customer_id, duplicate.other_id, duplicate.status) == (made.id, victim.id, "open")
    assert duplicate.reasons[0]["kind"] == "phone" and "Victoria Stone" in duplicate.reasons[0]["why"]
    assert duplicate.source == "chat"


def test_the_same_claimant_again_reuses_their_own_record_and_queues_nothing_new(app):
    factories.customer("Victoria Stone", phone="07700 900002")
    first = resolve_customer("Mallory Smith", None, "07700 900002", source="web_form")
    db.session.commit()
    again = resolve_customer("Mallory Smith", None, "07700 900002", source="web_form")
    db.session.commit()
    assert again.id == first.id
    assert db.session.scalar(select(func.count(PossibleDuplicate.id))) == 1


def test_email_and_name_agreeing_join_the_record(app):
    known = factories.customer("Jane Resident", email="jane@example.org")
    resolution = resolve_touch("jane resident", "jane@example.org", None, source="email")
    assert resolution.customer.id == known.id and resolution.matched == "agreeing"


def test_email_and_phone_on_one_record_join_it_even_under_another_name(app):
    known = factories.customer("Jane Resident", email="jane@example.org", phone="07700 900123")
    resolution = resolve_touch("Janey", "jane@example.org", "07700 900123", source="chat")
    assert resolution.customer.id == known.id and resolution.matched == "agreeing"


def test_a_touch_without_a_name_joins_on_its_one_identifier_but_is_marked_claimed(app):
    known = factories.customer("Jane Resident", email="jane@example.org")
    resolution = resolve_touch(None, "jane@example.org", None, source="email")
    assert resolution.customer.id == known.id and resolution.matched == "claimed"


def test_a_verified_identity_joins_whatever_name_is_given(app):
    known = factories.customer("Jane Resident", email="jane@example.org")
    resolution = resolve_touch("J. R.", "jane@example.org", None, source="portal", verified=True)
    db.session.commit()
    assert resolution.customer.id == known.id and resolution.matched == "verified"
    identity = db.session.scalar(select(CustomerIdentity).where(CustomerIdentity.value == "jane@example.org"))
    assert identity.verified and identity.verified_at is not None


def test_identifiers_of_two_records_join_the_one_that_agrees_and_queue_the_other(app):
    jane = factories.customer("Jane Resident", email="jane@example.org")
    bob = factories.customer("Bob Other", phone="07700 900777")
    resolution = resolve_touch("Jane Resident", "jane@example.org", "07700 900777", source="web_form")
    db.session.commit()
    assert resolution.customer.id == jane.id
    assert [(d.customer_id, d.other_id) for d in resolution.duplicates] == [(jane.id, bob.id)]


def test_a_decided_pair_is_not_queued_again(app, make_user):
    from crm.customers.duplicates import dismiss_duplicate

    factories.customer("Victoria Stone", phone="07700 900002")
    resolve_customer("Mallory Smith", None, "07700 900002", source="chat")
    db.session.commit()
    dismiss_duplicate(db.session.scalar(select(PossibleDuplicate)), make_user("supervisor"))
    db.session.commit()
    resolve_customer("Mallory Smith", None, "07700 900002", source="chat")
    db.session.commit()
    assert db.session.scalar(select(func.count(PossibleDuplicate.id))) == 1


def test_identities_record_their_source(app):
    made = resolve_customer("Olive Open", "olive@example.org", "07700 900555", source="open311")
    db.session.commit()
    assert {(i.kind, i.source, i.verified, i.main) for i in made.identities} == {
        ("email", "open311", False, True), ("phone", "open311", False, True)}
