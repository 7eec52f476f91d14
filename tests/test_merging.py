"""A merged customer, case or conversation leads to the record that holds it now."""
from crm.extensions import db
from crm.merging import live_record
from crm.models import Conversation
from tests import factories


def test_a_record_never_merged_is_its_own_live_record(app):
    jane = factories.customer("Jane Resident")
    assert live_record(jane) is jane
    assert live_record(None) is None


def test_a_chain_of_merges_is_followed_to_its_end(app):
    first, second, third = (factories.customer(name) for name in ("J. Resident", "Jane R.", "Jane Resident"))
    first.merged_into_id, second.merged_into_id = second.id, third.id
    db.session.commit()
    assert live_record(first) is third


def test_each_model_is_followed_within_its_own_table(app):
    jane = factories.customer("Jane Resident")
    kept, joined = (Conversation(customer_id=jane.id, channel="email", token=f"tok-{n}", subject="Bins")
                    for n in (1, 2))
    db.session.add_all([kept, joined])
    db.session.flush()
    joined.merged_into_id = kept.id
    db.session.commit()
    assert live_record(joined) is kept


def test_merge_links_that_loop_stop_where_the_loop_closes(app):
    one, other = factories.customer("Jane Resident"), factories.customer("J. Resident")
    one.merged_into_id, other.merged_into_id = other.id, one.id
    db.session.commit()
    assert live_record(one) is one
