"""Messages processed together (the file import's batches) end exactly as if they came one by one."""
import pytest
from sqlalchemy import func, select, text

from crm.channels import email as channel
from crm.channels.email import ingest as ingest_pipeline
from crm.channels.email.threads import ThreadIndex
from crm.extensions import db
from crm.models import Case, Contact, Conversation, Customer, InboundEmail, Message, OutboundEmail
from tests.channels.mailbuilder import raw_email


def ingest(*raws):
    results = channel.receive_many([channel.Arrival(raw) for raw in raws], source="file", commit=False)
    db.session.commit()
    return results


def next_case_reference() -> str:
    """The reference the next case will get (a batch takes case ids in order from here)."""
    if db.session.get_bind().dialect.name == "postgresql":
        sequence = db.session.scalar(text("SELECT pg_get_serial_sequence('cases', 'id')"))
        last, called = db.session.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
        return f"CAS-{(last + 1 if called else last):06d}"
    return f"CAS-{(db.session.scalar(select(func.max(Case.id))) or 0) + 1:06d}"


def test_a_reply_threads_into_a_conversation_opened_earlier_in_the_same_batch(services):
    first, reply = ingest(raw_email(subject="Pothole", message_id="batch-1@example.org"),
                          raw_email(subject="Re: Pothole", in_reply_to="batch-1@example.org", body="Deeper now"))
    assert (first.status, reply.status) == ("ingested", "threaded")
    assert reply.conversation_id == first.conversation_id
    assert reply.case_reference == first.case_reference is not None
    bodies = db.session.scalars(select(Message.body).where(Message.conversation_id == first.conversation_id)
                                .order_by(Message.seq)).all()
    assert bodies[0].startswith("There is a pothole") and bodies[-1] == "Deeper now"
    seqs = db.session.scalars(select(Message.seq).where(Message.conversation_id == first.conversation_id)
                              .order_by(Message.seq)).all()
    assert seqs == list(range(1, len(seqs) + 1))  # inbound, acknowledgement, reply


def test_quoting_a_case_opened_earlier_in_the_same_batch_joins_it(services):
    reference = next_case_reference()
    first, follow_up = ingest(raw_email(subject="Streetlight out"),
                              raw_email(subject=f"More about [{reference}]", body="And the next one too"))
    assert first.case_reference == reference
    assert follow_up.status == "threaded" and follow_up.conversation_id == first.conversation_id


def test_one_new_sender_writing_twice_in_a_batch_is_one_customer(services):
    first, second = ingest(raw_email(sender="New Person <new.person@example.org>", subject="Bins"),
                           raw_email(sender="new.person@example.org", subject="Library card"))
    assert first.customer_id == second.customer_id
    assert db.session.scalar(select(func.count(Customer.id)).where(Customer.name == "New Person")) == 1
    assert first.conversation_id != second.conversation_id  # two enquiries, two conversations


def test_the_same_message_twice_in_a_batch_is_stored_once(services):
    raw = raw_email(subject="Hedge", message_id="twice@example.org")
    first, again = ingest(raw, raw)
    assert (first.status, again.status) == ("ingested", "duplicate")
    assert again.conversation_id == first.conversation_id
    assert db.session.scalar(select(func.count(InboundEmail.id))) == 1


def test_acknowledgements_stay_rate_limited_within_a_batch(app, services):
    limit = app.config["EMAIL_ACK_PER_SENDER_PER_HOUR"]
    ingest(*[raw_email(subject=f"Enquiry {n}") for n in range(limit + 3)])
    assert db.session.scalar(select(func.count(OutboundEmail.id)).where(OutboundEmail.kind == "ack")) == limit


def test_a_message_that_breaks_processing_is_quarantined_and_the_rest_of_its_batch_kept(services, monkeypatch):
    real_route = channel.route_email

    def route_or_fail(parsed, recipients):
        if parsed.subject == "Explodes":
            raise RuntimeError("routing blew up")
        return real_route(parsed, recipients)

    monkeypatch.setattr(ingest_pipeline, "route_email", route_or_fail)
    results = ingest(raw_email(subject="Pothole", message_id="keep-1@example.org"),
                     raw_email(subject="Explodes"),
                     raw_email(subject="Re: Pothole", in_reply_to="keep-1@example.org"))
    assert [r.status for r in results] == ["ingested", "quarantined", "threaded"]
    assert "routing blew up" in results[1].reason
    assert results[2].conversation_id == results[0].conversation_id
    # Nothing of the failed message was left behind: one case, two contacts, every raw message kept.
    assert db.session.scalar(select(func.count(Case.id))) == 1
    assert db.session.scalar(select(func.count(Contact.id))) == 2
    assert db.session.scalar(select(func.count(InboundEmail.id))) == 3


def test_a_batch_written_together_has_every_row_linked(services):
    results = ingest(*[raw_email(sender=f"Resident {n} <resident{n}@example.org>", subject=f"Pothole {n}",
                                 to="highways@council.example") for n in range(30)])
    assert {r.status for r in results} == {"ingested"}
    for result in results:
        conversation = db.session.get(Conversation, result.conversation_id)
        assert conversation.customer_id == result.customer_id
        assert conversation.case.reference == result.case_reference
        contact = db.session.scalar(select(Contact).where(Contact.conversation_id == conversation.id))
        assert contact.case_id == conversation.case_id and conversation.case.raised_by_contact_id == contact.id
        inbound = db.session.get(InboundEmail, result.inbound_id)
        assert inbound.stored_message.conversation_id == conversation.id
        assert inbound.attempts == 1 and inbound.processed_at is not None


@pytest.mark.parametrize("size", [1, 7])
def test_the_cli_gives_the_same_counts_whatever_the_batch_size(runner, services, tmp_path, size):
    from tests.channels.test_email_cli_smtp import counts_of, write_mbox

    messages = [raw_email(subject="Bins", message_id="cli-1@example.org")]
    messages += [raw_email(subject=f"Re: Bins {n}", in_reply_to="cli-1@example.org") for n in range(9)]
    messages += [raw_email(subject="Away", headers={"Auto-Submitted": "auto-replied"}), messages[0]]
    path = tmp_path / "box.mbox"
    write_mbox(path, messages)
    result = runner.invoke(args=["crm", "ingest-email", "--batch", str(size), str(path)])
    assert counts_of(result) == {"ingested": 1, "threaded": 9, "duplicate": 1, "auto_reply": 1, "quarantined": 0}


def test_case_references_run_on_without_gaps_one_by_one_and_in_batches(services):
    one_by_one = [channel.receive(raw_email(subject=f"Pothole {n}"), source="smtp") for n in range(3)]
    batched = ingest(*[raw_email(subject=f"Pothole {n}") for n in range(3, 9)])
    numbers = [int(r.case_reference.split("-")[1]) for r in one_by_one + batched]
    assert numbers == list(range(numbers[0], numbers[0] + 9))


def test_replies_in_a_batch_to_a_stored_conversation_continue_its_numbering(services):
    first = channel.receive(raw_email(subject="Pothole", message_id="stored-1@example.org"), source="smtp")
    replies = ingest(*[raw_email(subject="Re: Pothole", in_reply_to="stored-1@example.org", body=f"Update {n}")
                       for n in range(3)])
    assert {r.conversation_id for r in replies} == {first.conversation_id}
    conversation = db.session.get(Conversation, first.conversation_id)
    seqs = db.session.scalars(select(Message.seq).where(Message.conversation_id == conversation.id)
                              .order_by(Message.seq)).all()
    assert seqs == list(range(1, len(seqs) + 1)) and conversation.last_seq == len(seqs) == 5  # + acknowledgement


def test_a_batch_holds_the_stored_conversations_it_numbers_until_it_commits(app, services):
    """Others wait for the batch instead of taking a seq it is about to use (PostgreSQL row locks)."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's batch holds the database write lock instead")
    first = channel.receive(raw_email(subject="Pothole", message_id="locked-1@example.org"), source="smtp")
    reply = channel.parse_email(raw_email(subject="Re: Pothole", in_reply_to="locked-1@example.org"))
    index = ThreadIndex.load([ingest_pipeline._Readable(None, reply, [], None)])
    assert index.locked == {first.conversation_id}
    other = create_engine(db.engine.url)
    try:
        with other.connect() as connection, pytest.raises(OperationalError, match="could not obtain lock"):
            connection.execute(text("SELECT id FROM conversations WHERE id = :id FOR UPDATE NOWAIT"),
                               {"id": first.conversation_id})
        db.session.rollback()
        with other.connect() as connection:  # released with the batch's transaction
            assert connection.execute(text("SELECT id FROM conversations WHERE id = :id FOR UPDATE NOWAIT"),
                                      {"id": first.conversation_id}).scalar() == first.conversation_id
    finally:
        other.dispose()
