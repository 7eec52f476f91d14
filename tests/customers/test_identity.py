"""Identity resolution: the same person is recognised whatever format they give."""
import pytest

from crm.customers.identity import (
    normalise_email, normalise_phone, normalise_postcode, resolve_customer,
)
from crm.errors import ValidationFailed
from crm.extensions import db
from crm.models import Customer
from tests import factories


@pytest.mark.parametrize("raw", ["07700 900123", "+44 7700 900123", "(07700) 900-123", "00447700900123",
                                 "+447700900123", "447700900123"])
def test_uk_mobile_numbers_in_any_format_normalise_to_one_e164(raw):
    assert normalise_phone(raw) == "+447700900123"


def test_landline_with_area_code_normalises():
    assert normalise_phone("01228 606060") == "+441228606060"


@pytest.mark.parametrize("raw", ["", "hello", "123", "+44 12"])
def test_impossible_phone_numbers_are_refused(raw):
    with pytest.raises(ValidationFailed):
        normalise_phone(raw)


def test_email_is_lower_cased_and_validated():
    assert normalise_email("  Jane.Doe@Example.ORG ") == "jane.doe@example.org"
    with pytest.raises(ValidationFailed):
        normalise_email("not-an-email")


@pytest.mark.parametrize("raw,expected", [("ca11aa", "CA1 1AA"), ("CA1 1AA", "CA1 1AA"), ("la9  4dq", "LA9 4DQ"),
                                          ("sw1a1aa", "SW1A 1AA")])
def test_postcodes_are_normalised_with_one_space(raw, expected):
    assert normalise_postcode(raw) == expected


def test_resolving_by_phone_in_another_format_finds_the_same_customer(app):
    known = factories.customer("Jane Resident", phone="07700 900123")
    found = resolve_customer("J Resident", phone="+44 (0)7700 900 123".replace("(0)", ""))
    assert found.id == known.id


def test_resolving_by_email_ignores_case_but_a_claimed_phone_is_not_added_to_the_record(app):
    known = factories.customer("Jane Resident", email="jane@example.org")
    found = resolve_customer("Jane Resident", email="JANE@Example.org", phone="07700 900456", source="chat")
    db.session.commit()
    assert found.id == known.id
    assert found.identity_values("phone") == []


def test_a_phone_confirmed_by_staff_on_a_call_is_added_verified(app):
    known = factories.customer("Jane Resident", email="jane@example.org")
    found = resolve_customer("Jane Resident", email="jane@example.org", phone="07700 900456",
                             source="phone", verified=True)
    db.session.commit()
    assert found.id == known.id
    phone = next(i for i in found.identities if i.kind == "phone")
    assert (phone.value, phone.verified, phone.source) == ("+447700900456", True, "phone")


def test_an_unknown_caller_becomes_a_new_customer(app):
    before = db.session.query(Customer).count()
    made = resolve_customer("New Person", email="new@example.org")
    db.session.commit()
    assert db.session.query(Customer).count() == before + 1
    assert made.identity_values("email") == ["new@example.org"]


def test_resolution_follows_a_merge_to_the_surviving_customer(app, make_user):
    from crm.customers.merge import merge_customers

    a = factories.customer("A Person", email="a@example.org")
    b = factories.customer("A Person", phone="07700 900999")
    merge_customers(a, b, make_user("supervisor"))
    db.session.commit()
    assert resolve_customer(email="a@example.org").id == b.id


def test_an_identity_held_by_another_customer_is_not_stolen(app):
    factories.customer("Owner", email="shared@example.org")
    with pytest.raises(ValidationFailed) as error:
        factories.customer("Other", email="Shared@example.org")
    assert error.value.status == 409
