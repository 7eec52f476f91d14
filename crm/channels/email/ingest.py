"""The inbound pipeline: store first, then process in batches; whatever cannot be understood is quarantined.

One way in for SMTP, HTTP and files: `receive(raw)` stores the raw bytes and commits before doing anything
else, so nothing is ever lost; processing then happens in a savepoint. A batch reads what its messages refer
to into one `ThreadIndex` (crm/channels/email/threads.py) and passes it down explicitly.
"""
import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from typing import Iterable, Optional

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import flag_modified, set_committed_value
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ...batching import current_batch, stage, write_batch
from ...cases import lifecycle
from ...cases.service import open_case, reopen_case
from ...conversations import lifecycle as conversation_lifecycle
from ...customers.identity import live_customer, reserved_mail_domain, resolve_customer
from ...customers.timeline import record_contact
from ...errors import Conflict, DomainError, ValidationFailed
from ...extensions import db
from ...jobs import crontab, periodic_job
from ...models import (
    Attachment, Case, Conversation, Customer, CustomerIdentity, InboundEmail, Message, OutboundEmail, utcnow,
)
from ...models.email import EmailThreadRef
from .parse import (
    MAX_BODY_CHARS, ParsedEmail, READ_POLICY, clean_line, date_written, header_addresses, header_text,
    is_our_message_id, message_id_of, parse_email,
)
from .text import sanitise_html, trim_reply
from .automatic import AutoSignal, BounceReport, read_bounce
from .routing import CHANNEL, EmailRoute, email_queue_for, route_email
from .threads import (
    CASE_REF_RE, ThreadIndex, append_message, belongs_to, conversation_by_headers, conversation_tokens,
    find_thread, join_threads, live_conversation, may_take, new_conversation, renumber, thread_ids,
    threads_to_join,
)
from .outbound import acknowledge
from .reading import Reading, ReadSettings, read_message

log = logging.getLogger(__name__)
ATTACHMENT_URL = "/email/attachments/{id}"
STUCK_AFTER = timedelta(minutes=1)  # the sweep leaves younger stored messages to whoever is taking them now


@dataclass
class IngestResult:
    """What became of one inbound message (the contract's answer of POST /inbound/email)."""

    status: str
    inbound_id: Optional[int] = None
    conversation_id: Optional[int] = None
    customer_id: Optional[int] = None
    case_reference: Optional[str] = None
    reason: Optional[str] = None

    def as_dict(self) -> dict:
        body = {"status": self.status, "conversation_id": self.conversation_id,
                "customer_id": self.customer_id}
        if self.case_reference:
            body["case_reference"] = self.case_reference
        if self.reason:
            body["reason"] = self.reason
        return body


def dedupe_key(message_id: Optional[str], raw: bytes) -> str:
    """Return the key that makes ingestion idempotent: the Message-ID, else the content."""
    basis = b"mid:" + message_id.encode("utf-8", "replace") if message_id else b"raw:" + raw
    return hashlib.sha256(basis).hexdigest()


def _result_for(inbound: InboundEmail, status: Optional[str] = None,
                conversation: Optional[Conversation] = None) -> IngestResult:
    if conversation is None and inbound.conversation_id:
        conversation = db.session.get(Conversation, inbound.conversation_id)
    case_reference = conversation.case.reference if conversation is not None and conversation.case else None
    return IngestResult(status or inbound.status, inbound.id, inbound.conversation_id, inbound.customer_id,
                        case_reference,
                        inbound.reason if (status or inbound.status) in ("quarantined", "auto_reply") else None)


@dataclass
class Arrival:
    """One raw message as it came in, with its SMTP envelope when there was one."""

    raw: bytes
    envelope_from: Optional[str] = None  # "" for the null sender, None when unknown
    envelope_to: tuple = ()
    reading: Optional[Reading] = None  # parsed ahead by a reader process (crm/channels/email/reading.py)


def receive(raw: bytes, *, source: str, envelope_from: Optional[str] = None,
            envelope_to: Iterable[str] = (), commit: bool = True) -> IngestResult:
    """Store a raw message, then process it: the one way in for SMTP, HTTP and files.

    With `commit` (SMTP and HTTP, which answer the sender), the raw bytes are committed before
    processing starts and the result after. `envelope_from` is the SMTP MAIL FROM ("" for the
    null sender, None when unknown).
    """
    if not isinstance(raw, (bytes, bytearray)) or not raw:
        raise ValidationFailed("An email message is required", {"message": ["empty"]})
    arrival = Arrival(bytes(raw), envelope_from, tuple(envelope_to))
    return receive_many([arrival], source=source, commit=commit)[0]


def receive_many(arrivals: list, *, source: str, commit: bool = True) -> list:
    """Store raw messages, then process them together; return one IngestResult per arrival, in order.

    The file import hands over a hundred messages at a time and commits after each batch: until
    then the file itself is the safe copy, and importing it again is idempotent. Empty messages
    must be left out by the caller (`receive` refuses them).
    """
    now = utcnow()
    rows = []
    for arrival in arrivals:
        message_id = message_id_of(arrival.raw)
        rows.append(dict(
            dedupe_key=dedupe_key(message_id, arrival.raw), message_id_header=message_id,
            content_sha256=hashlib.sha256(arrival.raw).hexdigest(), raw=arrival.raw, size=len(arrival.raw),
            source=source, envelope_from=None if arrival.envelope_from is None else arrival.envelope_from[:500],
            envelope_to=",".join(arrival.envelope_to)[:5000] or None, status="received", details={},
            attempts=0, received_at=now,
        ))
    unique = {}
    for row in rows:
        unique.setdefault(row["dedupe_key"], row)
    # INSERT ... ON CONFLICT DO NOTHING: the same message arriving twice at once (an MTA retry
    # racing the first try) cannot fail the transaction; the loser just finds the winner's row.
    insert = postgresql_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stored = dict(db.session.execute(
        insert(InboundEmail).on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(InboundEmail.dedupe_key, InboundEmail.id), list(unique.values())).all())
    to_process, earlier = [], []
    read_ahead = {row["dedupe_key"]: arrival.reading for row, arrival in zip(rows, arrivals) if arrival.reading}
    readings = {}  # by inbound id
    for key, row in unique.items():
        if key in stored:
            to_process.append(_stored_row(stored[key], row))
            if key in read_ahead:
                readings[stored[key]] = read_ahead[key]
    if len(stored) < len(unique):
        for existing in db.session.scalars(select(InboundEmail).where(
                InboundEmail.dedupe_key.in_([k for k in unique if k not in stored]))):
            if existing.status == "received":
                # Stored earlier but not processed (a killed listener, a database outage): whoever sees
                # it next processes it. If its first taker is still at work, process_many finds out.
                to_process.append(existing)
            else:
                earlier.append(existing)
    if commit:
        db.session.commit()
    keys = [inbound.dedupe_key for inbound in to_process]
    results = dict(zip(keys, process_many(to_process, commit=commit, readings=readings)))
    for existing in earlier:
        results[existing.dedupe_key] = _result_for(existing, "duplicate")
    answers, seen = [], set()
    for row in rows:
        result = results[row["dedupe_key"]]
        if row["dedupe_key"] in seen:  # the same message twice in one batch
            result = replace(result, status="duplicate", reason=None)
        seen.add(row["dedupe_key"])
        answers.append(result)
    return answers


def _stored_row(inbound_id: int, values: dict) -> InboundEmail:
    """Return the just-inserted row as a session object without reading it (and its raw bytes) back."""
    inbound = InboundEmail(id=inbound_id, reason=None, from_address=None, subject=None, full_text=None,
                           customer_id=None, conversation_id=None, stored_message_id=None, processed_at=None,
                           **values)
    make_transient_to_detached(inbound)
    db.session.add(inbound)
    return inbound


def process(inbound: InboundEmail, commit: bool = True) -> IngestResult:
    """Process one stored message; anything it cannot understand is quarantined."""
    return process_many([inbound], commit=commit)[0]


def process_many(inbounds: list, commit: bool = True, readings: Optional[dict] = None) -> list:
    """Process stored messages in one savepoint and one flush; return their results in order.

    `readings` has the messages already parsed (by inbound id); the others are parsed here.

    If any message of a batch fails, the batch is undone and each message is run again alone,
    so one bad message is quarantined and the others are processed as usual.
    """
    if not inbounds:
        return []
    # Counting the attempt is the first write and the claim: on SQLite it takes the write lock before
    # ids are reserved; on PostgreSQL a second taker of the same message waits here for the first to
    # finish and then finds it processed. Only rows still unprocessed are taken.
    claimed = set(db.session.scalars(
        update(InboundEmail).where(InboundEmail.id.in_([inbound.id for inbound in inbounds]),
                                   InboundEmail.status == "received")
        .values(attempts=InboundEmail.attempts + 1).returning(InboundEmail.id)
        .execution_options(synchronize_session=False)).all())
    if len(claimed) < len(inbounds):
        taken = [inbound for inbound in inbounds if inbound.id not in claimed]
        for inbound in taken:
            db.session.refresh(inbound)
        done = {inbound.id: _result_for(inbound, "duplicate") for inbound in taken}
        rest = process_many([i for i in inbounds if i.id in claimed], commit=commit, readings=readings) if claimed else []
        results = iter(rest)
        return [done[inbound.id] if inbound.id in done else next(results) for inbound in inbounds]
    ids = [inbound.id for inbound in inbounds]
    for inbound in inbounds:
        set_committed_value(inbound, "attempts", (inbound.attempts or 0) + 1)
    try:
        # No autoflush: the batch's new rows are written by the one flush at the end; look-ups go
        # through the batch's ThreadIndex, which knows both the stored rows and the new ones.
        with db.session.begin_nested(), db.session.no_autoflush, write_batch(len(inbounds)):
            results = _process_batch(inbounds, readings or {})
            _mark_processed(inbounds)
            db.session.flush()
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the messages are kept
        if len(inbounds) > 1:
            log.info("a batch of %d inbound emails failed (%s); processing them one by one", len(inbounds), exc)
            results = [process_many([db.session.get(InboundEmail, inbound_id)], commit=False)[0]
                       for inbound_id in ids]
            if commit:
                db.session.commit()
            return results
        log.warning("inbound email %s quarantined: %s", ids[0], exc, exc_info=not isinstance(exc, DomainError))
        inbound = db.session.get(InboundEmail, ids[0])
        reason = exc.message if isinstance(exc, DomainError) else f"{exc.__class__.__name__}: {exc}"
        inbound.status = "quarantined"
        inbound.reason = f"could not process: {reason}"[:2000]
        results = [IngestResult("quarantined", ids[0], reason=inbound.reason)]
        _mark_processed([inbound])
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return results


def _mark_processed(inbounds: list) -> None:
    processed_at = utcnow()
    for inbound in inbounds:
        inbound.processed_at = processed_at
        # Every processed row then updates the same columns, so a batch is one executemany
        # instead of a statement for each run of rows that happened to change different ones.
        for name in _PROCESSED_COLUMNS:
            if name in inbound.__dict__:
                flag_modified(inbound, name)


_PROCESSED_COLUMNS = ("status", "reason", "details", "from_address", "subject", "full_text", "customer_id",
                      "conversation_id", "stored_message_id")


def reprocess(inbound: InboundEmail) -> IngestResult:
    """Run a stored (quarantined or stuck) message through the pipeline again. Commits."""
    if inbound.status not in ("quarantined", "received"):
        raise Conflict(f"Message {inbound.id} is {inbound.status}; only quarantined messages are reprocessed")
    inbound.status = "received"
    inbound.reason = None
    db.session.flush()  # the claim in process_many reads the status from the database
    return process(inbound)


def sweep_unprocessed(older_than: timedelta = STUCK_AFTER, batch: int = 100) -> int:
    """Process stored messages nobody finished (a killed listener, a database outage). Commits; returns how many."""
    done, after = 0, 0
    cutoff = utcnow() - older_than
    while True:
        ids = db.session.scalars(select(InboundEmail.id).where(
            InboundEmail.status == "received", InboundEmail.received_at < cutoff, InboundEmail.id > after)
            .order_by(InboundEmail.id).limit(batch)).all()
        if not ids:
            return done
        rows = db.session.scalars(select(InboundEmail).where(InboundEmail.id.in_(ids))
                                  .order_by(InboundEmail.id)).all()
        done += sum(1 for result in process_many(rows, commit=True) if result.status != "duplicate")
        db.session.expunge_all()
        after = ids[-1]


@periodic_job(crontab(minute="*"))
def sweep_unprocessed_email() -> int:
    """Periodic job: process inbound mail that was stored but never processed."""
    return sweep_unprocessed()


def _quarantine(inbound: InboundEmail, reason: str) -> IngestResult:
    inbound.status = "quarantined"
    inbound.reason = reason
    return IngestResult("quarantined", inbound.id, customer_id=inbound.customer_id, reason=reason)


@dataclass
class _Readable:
    """A parsed message that passed the checks and waits for its thread or a new conversation."""

    inbound: InboundEmail
    parsed: ParsedEmail
    recipients: list
    automatic: Optional["AutoSignal"]
    route: Optional["EmailRoute"] = None  # where it goes if it is a new enquiry (worked out once)


def _process_batch(inbounds: list, readings: dict) -> list:
    """Parse every message, look up what they refer to in a few queries, then settle each in order."""
    readable = [_read(inbound, readings.get(inbound.id)) for inbound in inbounds]
    index = ThreadIndex.load([item for item in readable if isinstance(item, _Readable)])
    # A message that refers to nothing is a new enquiry: when it routes to a service it opens a
    # case, so those case numbers are taken in one go (the rest one at a time, as they come).
    new_enquiries = [item for item in readable if isinstance(item, _Readable) and item.automatic is None
                     and not thread_ids(item.parsed) and not CASE_REF_RE.search(item.parsed.subject)
                     and not conversation_tokens(item.parsed, item.recipients)]
    for item in new_enquiries:
        item.route = route_email(item.parsed, item.recipients)
    current_batch().expect(Case, sum(1 for item in new_enquiries if item.route.service is not None))
    results = list(readable)
    # Settled in the order they were written (Date, then Message-ID), so a batch that holds a
    # reply and the mail it answers threads them directly, whatever order they came in.
    order = sorted((i for i, item in enumerate(readable) if isinstance(item, _Readable)),
                   key=lambda i: _written_key(readable[i].parsed, i))
    for i in order:
        results[i] = _settle(readable[i], index)
    if index.out_of_order:
        db.session.flush()
        for conversation_id in sorted(index.out_of_order):
            renumber(conversation_id)
    return results


_NO_DATE = datetime.max.replace(tzinfo=None)


def _written_key(parsed: ParsedEmail, position: int) -> tuple:
    """Return the sort key of a message by when it was written (undated ones last, as they came)."""
    date = date_written(parsed)
    return (date.replace(tzinfo=None) if date else _NO_DATE, parsed.message_id or "", position)


def _read(inbound: InboundEmail, reading: Optional[Reading] = None):
    """Parse and check one message (unless read ahead): a _Readable, or the IngestResult of a quarantined one."""
    config = current_app.config
    if inbound.size > config["EMAIL_MAX_BYTES"]:
        headers = BytesHeaderParser(policy=READ_POLICY).parsebytes(inbound.raw[:256 * 1024])
        inbound.subject = clean_line(header_text(headers, "Subject"), 300) or None
        senders = header_addresses(headers, "From")
        inbound.from_address = senders[0][1][:254] if senders else None
        return _quarantine(inbound, f"message of {inbound.size} bytes is over the limit of "
                                    f"{config['EMAIL_MAX_BYTES']} bytes")
    reading = reading or read_message(inbound.raw, inbound.envelope_from, ReadSettings.of(config))
    parsed, automatic = reading.parsed, reading.automatic
    inbound.subject = parsed.subject[:300] or None
    inbound.from_address = parsed.from_address
    inbound.full_text = parsed.text[:MAX_BODY_CHARS * 5]
    details = {}
    if parsed.defects:
        details["defects"] = parsed.defects
    if parsed.withheld:
        details["withheld"] = parsed.withheld
    inbound.details = details
    recipients = list(dict.fromkeys([r for r in (inbound.envelope_to or "").lower().split(",") if r]
                                    + parsed.recipients))
    if automatic is None:
        if not parsed.from_address:
            what = f"From {parsed.from_raw!r}" if parsed.from_raw else "no From"
            return _quarantine(inbound, f"missing or malformed sender ({what})")
        if not parsed.text.strip() and not parsed.attachments and not parsed.subject:
            return _quarantine(inbound, "no readable content: no subject, body or attachments")
    return _Readable(inbound, parsed, recipients, automatic)


def _settle(item: _Readable, index: ThreadIndex) -> IngestResult:
    """Thread a readable message into its conversation, or open a new one."""
    inbound, parsed = item.inbound, item.parsed
    if item.automatic is not None:
        return _handle_automatic(inbound, parsed, item.automatic, index)
    customers = index.customers  # every sender of the batch was looked up in it
    customer = resolve_customer(parsed.from_name or None, parsed.from_address,
                                owners={"email": customers[parsed.from_address]})
    customers[parsed.from_address] = customer
    inbound.customer_id = customer.id
    if reserved_mail_domain(parsed.from_address):
        _mark_undeliverable(customer, parsed.from_address, "a special-use domain: no mail can reach it")
    unknown = [mid for mid in thread_ids(parsed) if mid not in index.by_message_id]
    conversation, note = find_thread(parsed, customer, item.recipients, index)
    if conversation is not None and conversation.channel == CHANNEL:
        conversation = join_threads(conversation, threads_to_join(parsed, customer, conversation, index), index)
    elif conversation is None:
        waiting = threads_to_join(parsed, customer, None, index)
        if waiting:  # replies that came before this message: it becomes their thread's start
            item.route = item.route or route_email(parsed, item.recipients)
            waiting = [c for c in waiting if may_take(item.route.service, c)]
        if waiting:
            conversation = join_threads(waiting[0], waiting[1:], index)
    if conversation is not None:
        case = conversation.case
        if case is not None and case.status in lifecycle.DONE_STATUSES:
            if lifecycle.can_reopen(case):
                reopen_case(case, reason="The resident replied by email")
            else:
                note = f"Follows closed case {case.reference}"
                conversation = None
    if conversation is not None:
        _append_inbound(inbound, parsed, conversation, customer, index)
        inbound.status = "threaded"
    else:
        conversation = _new_enquiry(inbound, parsed, customer, item.recipients, note, item.route, index)
        inbound.status = "ingested"
    _after_append(inbound, parsed, conversation, unknown, index)
    return _result_for(inbound, conversation=conversation)


def _after_append(inbound: InboundEmail, parsed: ParsedEmail, conversation: Conversation, unknown: list,
                  index: ThreadIndex) -> None:
    """Remember what this message refers to that has not arrived, and file automatic replies waiting for it."""
    domain = current_app.config["CRM_MAIL_DOMAIN"]
    for mid in unknown:
        if mid != parsed.message_id and not is_our_message_id(mid, domain):
            stage(EmailThreadRef(referenced_id=mid, conversation_id=conversation.id), flush=False)
            index.waiting.setdefault(mid, []).append((conversation, None))
    _take_waiting(conversation, parsed.message_id, index)


def _take_waiting(conversation: Conversation, message_id: Optional[str], index: ThreadIndex) -> Conversation:
    """Join the sender's threads waiting for a message just filed, and file automatic replies waiting for it."""
    if not message_id:
        return conversation
    index.load_waiting({message_id})  # read already, unless filed late (an automatic reply from an earlier batch)
    refs = list(index.waiting.get(message_id, ()))
    if not refs:
        return conversation
    customer = live_customer(conversation.customer)
    others = []
    for candidate, _ in refs:
        candidate = live_conversation(candidate)
        if (candidate is not None and candidate is not conversation and candidate not in others
                and candidate.channel == CHANNEL and belongs_to(candidate, customer)):
            others.append(candidate)
    conversation = join_threads(conversation, others, index)
    for _, inbound_id in refs:
        waiting = db.session.get(InboundEmail, inbound_id) if inbound_id else None
        if waiting is not None and waiting.status == "auto_reply" and waiting.conversation_id is None \
                and (not waiting.from_address or belongs_to(conversation, waiting.from_address)):
            late = parse_email(waiting.raw, max_attachment_bytes=current_app.config["EMAIL_MAX_ATTACHMENT_BYTES"])
            _file_automatic(waiting, late, conversation, False, index)
            conversation = _take_waiting(conversation, late.message_id, index)
    return conversation


def _mark_undeliverable(customer: Customer, address: str, reason: str) -> None:
    """Mark one of the customer's email identities as one we cannot send to."""
    for identity in live_customer(customer).identities:
        if identity.kind == "email" and identity.value == address and not identity.undeliverable:
            identity.undeliverable = True
            identity.undeliverable_reason = reason[:500]


def _handle_automatic(inbound: InboundEmail, parsed: ParsedEmail, signal: AutoSignal,
                      index: ThreadIndex) -> IngestResult:
    """Record an automatic message without answering it; a bounce marks the address undeliverable."""
    details = dict(inbound.details or {})
    details["automatic"] = signal.reasons
    inbound.status = "auto_reply"
    inbound.reason = "; ".join(signal.reasons)[:2000]
    domain = current_app.config["CRM_MAIL_DOMAIN"]
    conversation = None
    if signal.bounce:
        report = read_bounce(inbound.raw, parsed, domain)
        details["bounce"] = {"recipients": report.recipients, "permanent": report.permanent,
                             "returns": report.our_message_ids, "diagnostic": report.diagnostic}
        conversation = _apply_bounce(report)
    else:
        conversation = live_conversation(conversation_by_headers(parsed, index))
        if conversation is not None and parsed.from_address and not belongs_to(conversation, parsed.from_address):
            conversation = None
        if conversation is None:
            # Filed under its thread if the mail it answers arrives later (mail is not always in order).
            for mid in thread_ids(parsed):
                if mid not in index.by_message_id and not is_our_message_id(mid, domain):
                    stage(EmailThreadRef(referenced_id=mid, inbound_id=inbound.id), flush=False)
                    index.waiting.setdefault(mid, []).append((None, inbound.id))
    inbound.details = details
    if conversation is not None:
        _file_automatic(inbound, parsed, conversation, signal.bounce, index)
        if not signal.bounce:
            conversation = _take_waiting(conversation, parsed.message_id, index)
    return _result_for(inbound, conversation=conversation)


def _file_automatic(inbound: InboundEmail, parsed: ParsedEmail, conversation: Conversation, bounce: bool,
                    index: ThreadIndex) -> None:
    """Keep an automatic message in its conversation as an internal entry."""
    label = "Delivery failure" if bounce else "Automatic reply"
    body = f"{label} received: {parsed.subject or '(no subject)'}\n\n{trim_reply(parsed.text)[:4000]}"
    append_message(conversation, "system", body, direction="inbound", internal=True,
                   email_message_id=parsed.message_id, sent_at=date_written(parsed), index=index)
    inbound.conversation_id = conversation.id
    inbound.customer_id = conversation.customer_id


def _apply_bounce(report: BounceReport) -> Optional[Conversation]:
    """Mark the bounced send and, when the failure is permanent, the address it went to."""
    if not report.our_message_ids:
        return None  # a bounce that returns none of our mail cannot speak for our residents
    db.session.flush()  # rare: let the look-up see sends written earlier in this batch
    sends = db.session.scalars(select(OutboundEmail).where(
        OutboundEmail.message_id_header.in_(report.our_message_ids))).all()
    conversation = None
    for send in sends:
        if report.recipients and send.to_address.lower() not in report.recipients:
            continue
        conversation = send.conversation
        reason = f"bounced: {report.diagnostic or ('permanent failure' if report.permanent else 'delayed')}"
        if report.permanent:
            send.status = "bounced"
            send.last_error = reason[:2000]
            send.stored_message.delivery_status = "bounced"
            send.stored_message.delivery_error = reason[:2000]
            identity = db.session.scalar(select(CustomerIdentity).where(
                CustomerIdentity.kind == "email", CustomerIdentity.value == send.to_address.lower()))
            if identity is not None:
                identity.undeliverable = True
                identity.undeliverable_reason = reason[:500]
    return conversation


def _store_inbound_message(inbound: InboundEmail, parsed: ParsedEmail, conversation: Conversation,
                           index: ThreadIndex) -> Message:
    body = trim_reply(parsed.text, parsed.subject)
    if len(body) > MAX_BODY_CHARS:
        body = body[:MAX_BODY_CHARS] + "\n\n[message shortened for display; the full message is kept]"
    if not body.strip() and parsed.attachments:
        body = "(attachments only)"
    message = append_message(conversation, "resident", body, direction="inbound",
                             email_message_id=parsed.message_id, sent_at=date_written(parsed), index=index)
    inline_images, own_files = {}, []
    for item in parsed.attachments:
        attachment = Attachment(message_id=message.id, filename=item.filename, content_type=item.content_type,
                                size=len(item.data), sha256=hashlib.sha256(item.data).hexdigest(),
                                inline=item.inline, content_id=item.content_id, data=item.data)
        stage(attachment)
        own_files.append(ATTACHMENT_URL.format(id=attachment.id))
        if item.content_id:
            inline_images[item.content_id] = own_files[-1]
    if parsed.html:
        message.html = sanitise_html(parsed.html[:MAX_BODY_CHARS * 5], inline_images, own_files)
    inbound.conversation_id = conversation.id
    inbound.stored_message_id = message.id
    return message


def _append_inbound(inbound, parsed, conversation, customer, index: ThreadIndex) -> Message:
    """Add a resident's reply to its conversation, back in front of the agents."""
    message = _store_inbound_message(inbound, parsed, conversation, index)
    conversation_lifecycle.back_in_front(conversation)
    record_contact(customer, CHANNEL, summary=f"Email: {parsed.subject or '(no subject)'}"[:300],
                   notes=message.body[:2000], conversation=conversation, case=conversation.case,
                   occurred_at=message.created_at)
    return message


def _new_enquiry(inbound, parsed, customer, recipients, note, route, index: ThreadIndex) -> Conversation:
    """Open a conversation (and a case, when a service can be chosen) and acknowledge it."""
    where = route or route_email(parsed, recipients)
    subject = parsed.subject or "(no subject)"
    conversation = new_conversation(customer, subject, status="open", queue=where.queue, index=index)
    message = _store_inbound_message(inbound, parsed, conversation, index)
    notes = message.body[:2000] if not note else f"{note}\n\n{message.body[:2000]}"
    case = None
    if where.service is not None:
        # The case is opened first so the contact is written once, already linked and with its
        # outcome (an insert then two updates would also move it between report totals twice).
        description = parsed.text[:20000]
        if note:
            description = f"{note}\n\n{description}"
        case = open_case(customer, where.service.code, where.category, subject[:200], description,
                         source_channel=CHANNEL)
        conversation.case = case
        index.added_case(case, conversation)
        if where.queue is None or where.queue.service_id != case.service_id:
            conversation.queue_id = getattr(email_queue_for(case.service), "id", conversation.queue_id)
    contact = record_contact(customer, CHANNEL, summary=f"Email: {subject}"[:300], notes=notes,
                             category=where.category, conversation=conversation, case=case,
                             outcome="case_raised" if case is not None else "pending",
                             occurred_at=message.created_at)
    if case is not None:
        case.raised_by_contact_id = contact.id
    if note:
        append_message(conversation, "system", note, direction="inbound", internal=True, index=index)
    acknowledge(conversation, customer, parsed.from_address, parsed, case, index)
    return conversation
