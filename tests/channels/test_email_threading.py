"""Threads come out the same whatever order their mail arrives in: one batch, many, one by one, other processes."""
import os
import random
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import select

from crm.cases.service import add_event
from crm.channels import email as channel
from crm.extensions import db
from crm.channels.email.sources import iter_maildir
from crm.models import AuditLog, Case, Conversation, CustomerIdentity, InboundEmail, Message
from tests import factories
from tests.channels.test_email_cli_smtp import write_mbox

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
SENDERS = ("ann", "bob")  # two residents, so one of them often has two unrelated threads


@st.composite
def thread_sets(draw):
    """Draw threads as message templates: (key, sender, to, subject, minute, in_reply_to, references, auto)."""
    messages = []
    for thread in range(draw(st.integers(1, 4))):
        sender = draw(st.sampled_from(SENDERS))
        to = draw(st.sampled_from(["highways@council.example", "contact@council.example"]))
        keys = []
        for position in range(draw(st.integers(1, 5))):
            key = f"t{thread}m{position}"
            in_reply_to, references, auto = None, [], False
            if position:
                parent = draw(st.integers(0, position - 1))
                style = draw(st.sampled_from(["chain", "in-reply-to", "references"]))
                chain = keys[: parent + 1]
                in_reply_to = keys[parent] if style != "references" else None
                references = chain if style == "chain" else [keys[parent]] if style == "references" else []
                auto = position == len(keys) and draw(st.integers(0, 4)) == 0
            subject = f"Thread {thread}" if not position else f"Re: Thread {thread}"
            # Minutes unique across threads, so each message has its own Date and threads interleave.
            messages.append((key, sender, to, subject, position * 7 + thread, in_reply_to, references, auto))
            keys.append(key)
    return messages


def render(templates, prefix: str) -> list:
    """Turn templates into raw messages whose Message-IDs and senders carry the prefix (a fresh run each time)."""
    raws = []
    for key, sender, to, subject, minute, in_reply_to, references, auto in templates:
        mid = lambda k: f"{prefix}-{k}@mail.example.org"  # noqa: E731
        lines = [f"From: {sender.title()} Resident <{prefix}-{sender}@example.org>", f"To: {to}",
                 f"Subject: {'Automatic reply: ' if auto else ''}{subject}", f"Message-ID: <{mid(key)}>",
                 f"Date: {format_datetime(START + timedelta(minutes=minute))}", "Content-Type: text/plain"]
        if in_reply_to:
            lines.append(f"In-Reply-To: <{mid(in_reply_to)}>")
        if references:
            lines.append("References: " + " ".join(f"<{mid(r)}>" for r in references))
        if auto:
            lines.append("Auto-Submitted: auto-replied")
        raws.append(("\r\n".join(lines) + f"\r\n\r\nMessage {key} about the road.\r\n").encode())
    return raws


def snapshot(prefix: str) -> dict:
    """Describe the stored threads of one run without its ids: conversations, their messages in order, cases."""
    conversations, cases = set(), set()
    stored = db.session.execute(
        select(Message.conversation_id, Message.seq, Message.email_message_id)
        .where(Message.email_message_id.like(f"{prefix}-%"))).all()
    by_conversation = {}
    for conversation_id, seq, mid in stored:
        by_conversation.setdefault(conversation_id, []).append((seq, mid.split("-", 1)[1].split("@")[0]))
    live_cases = set()
    for conversation_id, rows in by_conversation.items():
        conversation = db.session.get(Conversation, conversation_id)
        assert conversation.merged_into_id is None
        seqs = db.session.scalars(select(Message.seq).where(Message.conversation_id == conversation_id)
                                  .order_by(Message.seq)).all()
        assert seqs == list(range(1, len(seqs) + 1))  # numbered without gaps after any join
        keys = tuple(key for _, key in sorted(rows))
        owner = conversation.customer.identities[0].value.split("-", 1)[1]
        conversations.add((owner, keys))
        case = conversation.case
        if case is not None:
            assert case.merged_into_id is None
            assert case.id not in live_cases  # one case per thread
            live_cases.add(case.id)
            cases.add((case.service.code, keys))
    unfiled = db.session.scalars(select(InboundEmail.message_id_header).where(
        InboundEmail.message_id_header.like(f"{prefix}-%"), InboundEmail.conversation_id.is_(None))).all()
    return {"conversations": conversations, "cases": cases, "unfiled": sorted(unfiled)}


def in_written_order(templates) -> dict:
    """Ingest one message at a time in the order they were written; return the snapshot to match."""
    prefix = uuid.uuid4().hex[:10]
    for raw in render(sorted(templates, key=lambda t: t[4]), prefix):
        channel.receive(raw, source="smtp")
    return snapshot(prefix)


def ingest_in_batches(raws, sizes):
    position = 0
    for size in sizes:
        part = raws[position:position + size]
        position += size
        if part:
            channel.receive_many([channel.Arrival(raw) for raw in part], source="file", commit=False)
            db.session.commit()
    if position < len(raws):
        channel.receive_many([channel.Arrival(raw) for raw in raws[position:]], source="file", commit=False)
        db.session.commit()


PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(templates=thread_sets(), data=st.data())
def test_any_permutation_in_one_batch_gives_the_same_threads_and_cases(services, templates, data):
    expected = in_written_order(templates)
    prefix = uuid.uuid4().hex[:10]
    raws = data.draw(st.permutations(render(templates, prefix)))
    ingest_in_batches(raws, [len(raws)])
    assert snapshot(prefix) == expected


@PROPERTY
@given(templates=thread_sets(), data=st.data())
def test_any_permutation_across_batches_gives_the_same_threads_and_cases(services, templates, data):
    expected = in_written_order(templates)
    prefix = uuid.uuid4().hex[:10]
    raws = data.draw(st.permutations(render(templates, prefix)))
    ingest_in_batches(raws, data.draw(st.lists(st.integers(1, 4), max_size=len(raws))))
    assert snapshot(prefix) == expected


@PROPERTY
@given(templates=thread_sets(), data=st.data())
def test_any_permutation_one_message_at_a_time_gives_the_same_threads_and_cases(services, templates, data):
    expected = in_written_order(templates)
    prefix = uuid.uuid4().hex[:10]
    for raw in data.draw(st.permutations(render(templates, prefix))):
        channel.receive(raw, source="http")
    assert snapshot(prefix) == expected


def _seeded(seed: int) -> list:
    """A fixed set of interleaved threads (deterministic, for the process test)."""
    rng = random.Random(seed)
    templates = []
    for thread in range(6):
        sender = SENDERS[thread % 2]
        keys = []
        for position in range(4):
            key = f"t{thread}m{position}"
            parent = rng.randrange(position) if position else None
            templates.append((key, sender, "highways@council.example", f"{'Re: ' if position else ''}Thread {thread}",
                              position * 7 + thread, keys[parent] if position else None,
                              keys[: parent + 1] if position else [], False))
            keys.append(key)
    return templates


def test_reversed_mail_imported_by_three_processes_at_once_gives_the_same_threads(services, database_url, tmp_path):
    templates = _seeded(7)
    expected = in_written_order(templates)
    prefix = uuid.uuid4().hex[:10]
    raws = list(reversed(render(templates, prefix)))
    env = dict(os.environ, DATABASE_URL=database_url, CRM_NO_MONKEY_PATCH="1", EMAIL_ACK_ENABLED="0")
    env.pop("REDIS_URL", None)
    processes = []
    for part in range(3):
        path = tmp_path / f"part{part}.mbox"
        write_mbox(path, raws[part::3])
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "crm", "ingest-email", "--batch", "3", str(path)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()[-2000:]
    db.session.expire_all()
    assert snapshot(prefix) == expected


def test_a_late_parent_joins_a_case_an_officer_already_worked(services, make_user):
    officer = make_user("service_officer")
    prefix = "late"
    parent, reply = render([
        ("p", "ann", "highways@council.example", "Pothole", 0, None, [], False),
        ("r", "ann", "highways@council.example", "Re: Pothole", 5, "p", ["p"], False)], prefix)
    orphan = channel.receive(reply, source="smtp")
    assert orphan.status == "ingested"  # nothing to thread to yet: a thread (and case) of its own
    worked = db.session.scalar(select(Case).where(Case.reference == orphan.case_reference))
    add_event(worked, "note", officer, body="Inspector booked for Tuesday")
    db.session.commit()

    late = channel.receive(parent, source="smtp")

    assert late.status == "threaded" and late.conversation_id == orphan.conversation_id
    conversation = db.session.get(Conversation, late.conversation_id)
    inbound = [m for m in conversation.messages if m.direction == "inbound"]
    assert [m.email_message_id for m in inbound] == ["late-p@mail.example.org", "late-r@mail.example.org"]
    assert conversation.subject == "Pothole"  # named after the mail that started the thread
    assert conversation.case.reference == orphan.case_reference  # the resident's reference still leads here
    events = [e.kind for e in conversation.case.events]
    assert "note" in events  # the officer's work is kept
    assert db.session.scalar(select(Case).where(Case.merged_into_id.is_not(None))) is None


def test_two_threads_joined_by_a_late_message_merge_their_cases_and_keep_both_histories(services, make_user):
    officer = make_user("service_officer")
    first, middle, last = render([
        ("a", "ann", "highways@council.example", "Streetlight", 0, None, [], False),
        ("b", "ann", "highways@council.example", "Re: Streetlight", 5, "a", ["a"], False),
        ("c", "ann", "highways@council.example", "Re: Streetlight", 9, "b", ["b"], False)], "join")
    one = channel.receive(first, source="smtp")
    three = channel.receive(last, source="smtp")
    assert one.conversation_id != three.conversation_id and one.case_reference != three.case_reference
    worked = db.session.scalar(select(Case).where(Case.reference == three.case_reference))
    add_event(worked, "note", officer, body="Column 12 checked")
    db.session.commit()

    two = channel.receive(middle, source="smtp")

    assert two.status == "threaded" and two.conversation_id == one.conversation_id
    conversation = db.session.get(Conversation, one.conversation_id)
    assert [m.email_message_id for m in conversation.messages if m.direction == "inbound"] == [
        "join-a@mail.example.org", "join-b@mail.example.org", "join-c@mail.example.org"]
    merged = db.session.scalar(select(Case).where(Case.reference == three.case_reference))
    assert merged.merged_into_id == conversation.case.id  # the later thread's case folded into the first's
    assert "note" in [e.kind for e in merged.events]  # its history is kept where it was
    assert "merged_in" in [e.kind for e in conversation.case.events]
    joined = db.session.get(Conversation, three.conversation_id)
    assert joined.merged_into_id == conversation.id
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "conversation.join")) is not None
    # A reply quoting the later thread's reference still reaches the joined thread.
    again = channel.receive(render([("d", "ann", "highways@council.example", f"Re: [{three.case_reference}]", 20,
                                     None, [], False)], "join")[0], source="smtp")
    assert again.conversation_id == conversation.id


def test_another_residents_reply_does_not_join_or_take_a_thread(services):
    mine, theirs = render([("p", "ann", "highways@council.example", "Bins", 0, None, [], False),
                           ("q", "bob", "highways@council.example", "Re: Bins", 3, "p", ["p"], False)], "other")
    stranger = channel.receive(theirs, source="smtp")
    owner = channel.receive(mine, source="smtp")
    assert stranger.conversation_id != owner.conversation_id
    assert db.session.get(Conversation, stranger.conversation_id).merged_into_id is None


def test_a_maildir_is_read_in_delivery_order_not_directory_order(tmp_path):
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    deliveries = [  # (file name, Date): names out of order, two delivered in the same second
        ("1700000300.M3P1.host", "Tue, 14 Nov 2023 22:18:20 +0000", "third"),
        ("1700000100.M1P1.host", "Tue, 14 Nov 2023 22:15:00 +0000", "first"),
        ("1700000200.M9P1.host", "Tue, 14 Nov 2023 22:16:41 +0000", "second-later"),
        ("1700000200.M2P1.host", "Tue, 14 Nov 2023 22:16:40 +0000", "second"),
    ]
    for name, date, body in deliveries:
        sub = "cur" if body == "third" else "new"
        (maildir / sub / (name + (":2,S" if sub == "cur" else ""))).write_bytes(
            f"From: a@example.org\nDate: {date}\nSubject: x\n\n{body}\n".encode())
    bodies = [raw.split(b"\n\n", 1)[1].strip().decode() for raw in iter_maildir(str(maildir))]
    assert bodies == ["first", "second", "second-later", "third"]


def test_a_sender_at_a_special_use_domain_is_a_customer_marked_undeliverable(services):
    raw = render([("x", "ann", "highways@council.example", "Pothole", 0, None, [], False)], "reserved")[0]
    raw = raw.replace(b"reserved-ann@example.org", b"ann@printer.local")
    result = channel.receive(raw, source="smtp")
    assert result.status == "ingested" and result.customer_id is not None
    identity = db.session.scalar(select(CustomerIdentity).where(CustomerIdentity.value == "ann@printer.local"))
    assert identity.undeliverable and "special-use" in identity.undeliverable_reason
    conversation = db.session.get(Conversation, result.conversation_id)
    assert [m for m in conversation.messages if m.direction == "outbound"] == []  # no acknowledgement to nowhere


def test_the_peer_corpus_threads_exactly_in_directory_order(runner, services, tmp_path):
    generator = ROOT.parent / "shared" / "peers" / "helpdesk" / "gen_mail.py"
    if not generator.exists():
        import pytest

        pytest.skip("the peer corpus generator is not on this machine")
    subprocess.run([sys.executable, str(generator), "--count", "300", "--out", str(tmp_path / "mail")],
                   check=True, capture_output=True)
    import json

    manifest = json.loads((tmp_path / "mail" / "manifest.json").read_text())
    result = runner.invoke(args=["crm", "ingest-email", str(tmp_path / "mail" / "Maildir")])
    counts = json.loads(result.output.strip().splitlines()[-1])
    assert (counts["ingested"], counts["threaded"], counts["auto_reply"]) == (
        manifest["counts"]["new"], manifest["counts"]["reply"], manifest["counts"]["autoreply"])


def test_threads_of_a_sensitive_service_and_another_service_are_never_joined(services):
    factories.service("adult_social_care", "Adult Social Care", email_address="care@council.example",
                      categories=(("care_assessment", "Care assessment"),), sensitive=True)
    parent, reply = render([
        ("p", "ann", "highways@council.example", "Help at home", 0, None, [], False),
        ("r", "ann", "care@council.example", "Re: Help at home", 5, "p", ["p"], False)], "care")
    private = channel.receive(reply, source="smtp")
    public = channel.receive(parent, source="smtp")
    assert public.conversation_id != private.conversation_id  # joining would open the care case to all
    care_case = db.session.scalar(select(Case).where(Case.reference == private.case_reference))
    assert care_case.merged_into_id is None and care_case.service.sensitive
    assert db.session.get(Conversation, private.conversation_id).merged_into_id is None
    # The other way round: a late first mail to the sensitive service does not land in an ordinary thread.
    parent, reply = render([
        ("p", "ann", "care@council.example", "Carer visits", 10, None, [], False),
        ("r", "ann", "highways@council.example", "Re: Carer visits", 15, "p", ["p"], False)], "care2")
    ordinary = channel.receive(reply, source="smtp")
    restricted = channel.receive(parent, source="smtp")
    assert restricted.conversation_id != ordinary.conversation_id
    assert db.session.get(Conversation, restricted.conversation_id).case.service.sensitive
