"""crm/web.py act(): a staff page's change is committed and flashed, or rolled back with the reason."""
from flask import get_flashed_messages

from crm.errors import ValidationFailed
from crm.extensions import db
from crm.models import Customer
from crm.web import act


def test_a_change_is_committed_and_its_result_worded_and_answered(app):
    with app.test_request_context():
        answer = act(lambda: _add("Jane Resident"), lambda made: f"Added {made.name}.", lambda made: ("done", made.id),
                     lambda error: "refused")
        assert answer == ("done", db.session.query(Customer.id).scalar())
        assert get_flashed_messages(with_categories=True) == [("success", "Added Jane Resident.")]
    db.session.rollback()
    assert db.session.query(Customer).count() == 1  # committed, not merely flushed


def test_a_refusal_rolls_back_and_says_which_fields(app):
    def refuse():
        _add("Half Made")
        raise ValidationFailed("Check the record", {"email": ["not an email address"]})

    with app.test_request_context():
        answer = act(refuse, "never shown", lambda _: "done", lambda error: ("refused", error.status))
        assert answer == ("refused", 422)
        assert get_flashed_messages(with_categories=True) == [("error", "Check the record: not an email address")]
    assert db.session.query(Customer).count() == 0


def test_no_message_when_the_answer_shows_it(app):
    with app.test_request_context():
        act(lambda: _add("Quiet"), None, lambda _: "download", lambda error: "refused")
        assert get_flashed_messages() == []


def _add(name):
    customer = Customer(name=name)
    db.session.add(customer)
    db.session.flush()
    return customer
