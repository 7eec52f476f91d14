"""Which conversation a message continues, joining threads that turn out to be one, and numbering messages.

`ThreadIndex` is what one ingest batch looks up, read in a few queries; functions that take an `index`
use it instead of the database for the batch's own unflushed rows.
"""
import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Iterable, Optional

from flask import current_app
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ...audit import audit
from ...batching import stage
from ...cases.service import merge_cases
from ...conversations import lifecycle, service as conversations
from ...customers.identity import live_customer
from ...extensions import db
from ...merging import live_record
from ...models import (
    Case, Contact, Conversation, Customer, CustomerIdentity, InboundEmail, Message, OutboundEmail, Service,
    utcnow,
)
from ...models.email import EmailThreadRef
from .parse import ParsedEmail
from .routing import CHANNEL, email_queue_for


CASE_REF_RE = re.compile(r"\bCAS-(\d{6,})\b", re.IGNORECASE)
SUBJECT_TOKEN_RE = re.compile(r"\[#([a-z0-9]{8,64})\]", re.IGNORECASE)
REPLY_ADDRESS_RE = re.compile(r"^reply\+([a-z0-9]{8,64})@(.+)$", re.IGNORECASE)
MAX_THREAD_IDS = 50


class ThreadIndex:
    """What one batch of messages looks up, read in a few queries before any of them is settled.

    Senders' customers, conversations by Message-ID, cases by reference, conversations by token
    and recent acknowledgements per address are read for the whole batch at once; the rows the
    batch then writes (not flushed until its end) are added as they are made, so a reply to a
    message earlier in the same batch finds its thread exactly as it would a stored one.
    """

    def __init__(self):
        self.customers = {}  # email address -> live customer holding it, or None
        self.by_message_id = {}  # Message-ID (ours and theirs) -> conversation
        self.cases = {}  # case reference -> case, or None
        self.case_conversations = {}  # case id -> its latest email conversation, or None
        self.by_token = {}  # conversation token -> email conversation, or None
        self.recent_acks = {}  # address -> acknowledgements sent to it in the last hour
        self.threads = {}  # id of a conversation new in this batch -> [(Message-ID, direction)]
        self.locked = set()  # ids of stored conversations locked for this batch: it numbers their messages
        # Message-ID not seen yet -> [(conversation, None) or (None, inbound id of an automatic reply)]
        # that refer to it: joined to (or filed under) it when it arrives.
        self.waiting = {}
        self.waiting_loaded = set()  # Message-IDs whose stored waiting rows are in `waiting`
        self.latest_sent = {}  # conversation id -> Date of its latest dated inbound message
        self.out_of_order = set()  # conversations whose messages must be numbered again by date

    @classmethod
    def load(cls, items: list) -> "ThreadIndex":
        index = cls()
        addresses = {item.parsed.from_address for item in items if item.parsed.from_address}
        message_ids = {mid for item in items for mid in thread_ids(item.parsed)}
        references = {f"CAS-{ref}".upper() for item in items for ref in CASE_REF_RE.findall(item.parsed.subject)}
        tokens = {token for item in items for token in conversation_tokens(item.parsed, item.recipients)}
        # Advisory locks per sender first (PostgreSQL), before anything is read: two sessions taking
        # a reply and the mail it answers (or two first mails of a new sender) at the same moment would
        # each miss the other's uncommitted rows.
        _lock_senders(addresses)
        if addresses:
            index.customers = dict.fromkeys(addresses)
            for identity in db.session.scalars(
                    select(CustomerIdentity)
                    .options(joinedload(CustomerIdentity.customer).selectinload(Customer.identities))
                    .where(CustomerIdentity.kind == "email", CustomerIdentity.value.in_(addresses))):
                index.customers[identity.value] = live_customer(identity.customer)
            index.recent_acks = dict.fromkeys(addresses, 0)
            index.recent_acks.update(db.session.execute(
                select(OutboundEmail.to_address, func.count(OutboundEmail.id))
                .where(OutboundEmail.to_address.in_(addresses), OutboundEmail.kind == "ack",
                       OutboundEmail.created_at >= utcnow() - ACK_WINDOW)
                .group_by(OutboundEmail.to_address)).all())
        if any(item.parsed.message_id for item in items):
            index.load_waiting({item.parsed.message_id for item in items if item.parsed.message_id})
        if message_ids:
            pairs = db.session.execute(select(Message.email_message_id, Message.conversation_id)
                                       .where(Message.email_message_id.in_(message_ids))).all()
            conversations = _conversations_by_id({conversation_id for _, conversation_id in pairs})
            index.by_message_id = {mid: conversations[conversation_id] for mid, conversation_id in pairs}
        if references:
            index.cases = dict.fromkeys(references)
            cases = db.session.scalars(select(Case).options(joinedload(Case.customer))
                                       .where(Case.reference.in_(references))).all()
            index.cases.update({case.reference: case for case in cases})
            index.case_conversations = dict.fromkeys(case.id for case in cases)
            for conversation in db.session.scalars(
                    select(Conversation).options(joinedload(Conversation.customer))
                    .where(Conversation.case_id.in_(index.case_conversations), Conversation.channel == CHANNEL,
                           Conversation.merged_into_id.is_(None))
                    .order_by(Conversation.id)):
                index.case_conversations[conversation.case_id] = conversation  # the latest wins
        if tokens:
            index.by_token = dict.fromkeys(tokens)
            index.by_token.update({c.token: c for c in db.session.scalars(
                select(Conversation).options(joinedload(Conversation.customer))
                .where(Conversation.token.in_(tokens), Conversation.channel == CHANNEL))})
        index._lock_candidates()
        return index

    def _lock_candidates(self) -> None:
        """Lock the stored conversations the batch may write to, so it can number their messages itself.

        Each reply would otherwise take its seq with an UPDATE ... RETURNING of its own. Rows are
        locked in id order (two batches never wait on each other in a cycle) and re-read, so the
        seq the batch counts from is the current one; SQLite's batch holds the write lock already.
        """
        candidates = {c.id for c in self.by_message_id.values()}
        candidates |= {c.id for c in self.case_conversations.values() if c is not None}
        candidates |= {c.id for c in self.by_token.values() if c is not None}
        candidates |= {c.id for refs in self.waiting.values() for c, _ in refs if c is not None}
        if candidates:
            rows = db.session.execute(select(Conversation.id, Conversation.last_seq)
                                      .where(Conversation.id.in_(candidates)).order_by(Conversation.id)
                                      .with_for_update()).all()
            for conversation_id, last_seq in rows:
                set_committed_value(db.session.get(Conversation, conversation_id), "last_seq", last_seq)
            self.locked = {conversation_id for conversation_id, _ in rows}
            self.latest_sent.update(db.session.execute(
                select(Message.conversation_id, func.max(Message.sent_at))
                .where(Message.conversation_id.in_(candidates), Message.sent_at.is_not(None),
                       Message.direction == "inbound").group_by(Message.conversation_id)).all())

    def load_waiting(self, message_ids: set) -> None:
        """Read the stored threads and automatic replies that wait for these Message-IDs."""
        message_ids = message_ids - self.waiting_loaded
        if not message_ids:
            return
        self.waiting_loaded |= message_ids
        refs = db.session.execute(select(EmailThreadRef.referenced_id, EmailThreadRef.conversation_id,
                                         EmailThreadRef.inbound_id)
                                  .where(EmailThreadRef.referenced_id.in_(message_ids))).all()
        waiting = _conversations_by_id({r.conversation_id for r in refs if r.conversation_id})
        for referenced_id, conversation_id, inbound_id in refs:
            conversation = live_conversation(waiting.get(conversation_id)) if conversation_id else None
            if conversation is not None or inbound_id:
                self.waiting.setdefault(referenced_id, []).append((conversation, inbound_id))

    def added_conversation(self, conversation: Conversation) -> None:
        self.by_token[conversation.token] = conversation
        self.threads[conversation.id] = []
        if conversation.case is not None:
            self.case_conversations[conversation.case.id] = conversation

    def added_case(self, case: Case, conversation: Conversation) -> None:
        self.cases[case.reference] = case
        self.case_conversations[case.id] = conversation

    def added_message(self, conversation: Conversation, message: Message) -> None:
        if message.email_message_id:
            self.by_message_id[message.email_message_id] = conversation
            if conversation.id in self.threads:
                self.threads[conversation.id].append((message.email_message_id, message.direction))
        if message.sent_at is not None and message.direction == "inbound":
            latest = self.latest_sent.get(conversation.id)
            if latest is not None and message.sent_at < latest:
                self.out_of_order.add(conversation.id)  # numbered again when the batch ends
            else:
                self.latest_sent[conversation.id] = message.sent_at

    def joined(self, winner: Conversation, losers: list) -> None:
        """Point everything the batch knows about the joined conversations at the one that holds them now."""
        gone = {c.id for c in losers}
        for mapping in (self.by_message_id, self.by_token, self.case_conversations):
            for key, conversation in mapping.items():
                if conversation is not None and conversation.id in gone:
                    mapping[key] = winner
        for key, refs in self.waiting.items():
            self.waiting[key] = [(winner if c is not None and c.id in gone else c, i) for c, i in refs]
        for conversation_id in gone | {winner.id}:
            self.threads.pop(conversation_id, None)  # flushed: thread_headers reads the database now
        self.locked |= gone | {winner.id}
        dates = [self.latest_sent.get(i) for i in gone | {winner.id}]
        self.latest_sent[winner.id] = max((d for d in dates if d is not None), default=None)
        self.out_of_order.add(winner.id)


ACK_WINDOW = timedelta(hours=1)


def _lock_senders(addresses: set) -> None:
    """Serialise the threading of each sender's mail across sessions (PostgreSQL; SQLite has one writer)."""
    if not addresses or db.session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({int.from_bytes(hashlib.sha256(a.encode()).digest()[:8], "big", signed=True) for a in addresses})
    db.session.execute(select(func.count()).select_from(
        select(func.pg_advisory_xact_lock(func.unnest(keys))).subquery()))


def live_conversation(conversation: Optional[Conversation]) -> Optional[Conversation]:
    """Follow merged_into links to the conversation that holds a joined thread now."""
    return live_record(conversation)


def threads_to_join(parsed: ParsedEmail, customer: Customer, conversation: Optional[Conversation],
                    index: ThreadIndex) -> list:
    """Return the sender's other email threads this message links: ones it refers to, ones waiting for it."""
    found = [index.by_message_id[mid] for mid in thread_ids(parsed) if mid in index.by_message_id]
    if parsed.message_id:
        found += [c for c, _ in index.waiting.get(parsed.message_id, ()) if c is not None]
    related = []
    for candidate in found:
        candidate = live_conversation(candidate)
        if (candidate is None or candidate is conversation or candidate in related
                or candidate.channel != CHANNEL or not belongs_to(candidate, customer)):
            continue  # the sender must match the thread's customer, as for mail in order
        related.append(candidate)
    return related


def _sort_key(sent_at, created_at, direction, message_id, row_id) -> tuple:
    # Mail written in the same second stays in the order it came (Date has no finer grain).
    return (sent_at or created_at, row_id)


def join_threads(conversation: Conversation, others: list, index: ThreadIndex) -> Conversation:
    """Join email threads that turned out to be one; return the one that holds them all.

    The thread whose first message was written earliest keeps its row; the others' messages,
    contacts and sends move to it (numbered again by date when the batch ends), their cases are
    merged into its case through the cases service (both histories kept, audited), and each
    joined conversation points at it, so its reply token still leads to the thread.
    """
    others = [other for other in others if _may_join(conversation, other)]
    if not others:
        return conversation
    db.session.flush()
    everyone = [conversation] + others
    ids = sorted(c.id for c in everyone)
    db.session.execute(select(Conversation.id).where(Conversation.id.in_(ids)).order_by(Conversation.id)
                       .with_for_update()).all()
    starts = {}
    for row in db.session.execute(select(Message.conversation_id, Message.sent_at, Message.created_at,
                                         Message.direction, Message.email_message_id, Message.id)
                                  .where(Message.conversation_id.in_(ids))):
        key = _sort_key(*row[1:])
        starts[row[0]] = min(starts.get(row[0], key), key)
    winner = min(everyone, key=lambda c: (c.id not in starts, starts.get(c.id, ()), c.id))
    losers = [c for c in everyone if c is not winner]
    loser_ids = [c.id for c in losers]
    # seq = -id is unique: the moved messages cannot collide before they are numbered again.
    db.session.execute(update(Message).where(Message.conversation_id.in_(loser_ids))
                       .values(conversation_id=winner.id, seq=-Message.id)
                       .execution_options(synchronize_session=False))
    for model in (Contact, InboundEmail, OutboundEmail, EmailThreadRef):
        db.session.execute(update(model).where(model.conversation_id.in_(loser_ids))
                           .values(conversation_id=winner.id).execution_options(synchronize_session=False))
    target = live_record(winner.case)
    for loser in losers:
        case = live_record(loser.case)
        if case is None or (target is not None and case.id == target.id):
            continue
        if target is None:
            target = case
            continue
        source, into = (target, case) if target.status == "closed" and case.status != "closed" else (case, target)
        if into.status != "closed":
            merge_cases(source, into, None, reason="An email thread found to be one with this case's thread")
            target = into
    now = utcnow()
    for loser in losers:
        loser.merged_into_id = winner.id
        loser.status = "closed"
        loser.closed_at = loser.closed_at or now
        if winner.assignee_id is None and loser.assignee_id is not None:
            winner.assignee_id = loser.assignee_id
    if target is not None:
        winner.case = target
        for loser in losers:
            loser.case = target
    if winner.status in lifecycle.DONE and any(c.status not in lifecycle.DONE for c in losers):
        winner.status, winner.closed_at = ("assigned" if winner.assignee_id else "open"), None
    audit(None, "conversation.join", "conversation", winner.id, joined=loser_ids,
          case=target.reference if target is not None else None)
    db.session.flush()
    for loser in losers:
        db.session.expire(loser)
    db.session.expire(winner)
    index.joined(winner, losers)
    return winner


def _may_join(one: Conversation, other: Conversation) -> bool:
    """Say whether two threads may become one: never if that would open a sensitive service's case to others."""
    cases = [live_record(one.case), live_record(other.case)]
    if not any(case is not None and case.service is not None and case.service.sensitive for case in cases):
        return True
    return all(case is not None for case in cases) and cases[0].service_id == cases[1].service_id


def may_take(service: Optional[Service], conversation: Conversation) -> bool:
    """Say whether a late first message bound for `service` may start a thread already stored."""
    case = live_record(conversation.case)
    if not ((service is not None and service.sensitive) or (case is not None and case.service.sensitive)):
        return True
    return case is not None and service is not None and case.service_id == service.id


def renumber(conversation_id: int) -> None:
    """Number a conversation's messages again in the order they were written."""
    rows = db.session.execute(select(Message.id, Message.sent_at, Message.created_at, Message.direction,
                                     Message.email_message_id)
                              .where(Message.conversation_id == conversation_id)).all()
    rows.sort(key=lambda r: _sort_key(r.sent_at, r.created_at, r.direction, r.email_message_id, r.id))
    table = Message.__table__
    db.session.execute(update(table).where(table.c.conversation_id == conversation_id).values(seq=-table.c.id))
    db.session.execute(update(table).where(table.c.id == bindparam("row_id")).values(seq=bindparam("new_seq")),
                       [{"row_id": r.id, "new_seq": n} for n, r in enumerate(rows, start=1)])
    first = db.session.scalar(select(InboundEmail.subject).where(InboundEmail.stored_message_id == rows[0].id)) \
        if rows else None
    values = {"last_seq": len(rows)}
    if first:
        values["subject"] = first  # the thread is named after the mail that started it
    db.session.execute(update(Conversation).where(Conversation.id == conversation_id).values(**values)
                       .execution_options(synchronize_session=False))
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is not None:
        db.session.expire(conversation, ["last_seq", "subject", "messages"])
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Message) and obj.__dict__.get("conversation_id") == conversation_id:
            db.session.expire(obj, ["seq"])


def _conversations_by_id(ids: set) -> dict:
    if not ids:
        return {}
    return {c.id: c for c in db.session.scalars(
        select(Conversation).options(joinedload(Conversation.customer), joinedload(Conversation.case))
        .where(Conversation.id.in_(ids)))}


def thread_ids(parsed: ParsedEmail) -> list:
    """Return the Message-IDs a message refers to, the most direct first."""
    return list(dict.fromkeys(parsed.in_reply_to + list(reversed(parsed.references))))[:MAX_THREAD_IDS]


def conversation_tokens(parsed: ParsedEmail, recipients: Iterable[str]) -> list:
    """Return the conversation tokens a message carries: [#TOKEN] in the subject, reply+TOKEN@ addresses."""
    tokens = [t.lower() for t in SUBJECT_TOKEN_RE.findall(parsed.subject)]
    domain = current_app.config["CRM_MAIL_DOMAIN"].lower()
    for address in recipients:
        match = REPLY_ADDRESS_RE.match(address)
        if match and match.group(2).lower() == domain:
            tokens.append(match.group(1).lower())
    return list(dict.fromkeys(tokens))


def belongs_to(conversation: Conversation, address_or_customer) -> bool:
    """Say whether the conversation is this sender's (by customer, following merges)."""
    owner = live_customer(conversation.customer)
    if isinstance(address_or_customer, Customer):
        return owner is not None and owner.id == live_customer(address_or_customer).id
    return owner is not None and address_or_customer.lower() in owner.identity_values("email")


def conversation_by_headers(parsed: ParsedEmail, index: ThreadIndex) -> Optional[Conversation]:
    """Return the conversation of the first Message-ID this message refers to that we know."""
    by_message_id = index.by_message_id
    return next((by_message_id[mid] for mid in thread_ids(parsed) if mid in by_message_id), None)


def find_thread(parsed: ParsedEmail, customer: Customer, recipients: Iterable[str], index: ThreadIndex):
    """Find the conversation a message continues: headers, then subject reference, then reply address.

    Returns (conversation or None, note). Every way must also match the sender, so a stranger
    answering a forwarded thread starts their own conversation instead of joining someone's case.
    """
    note = None
    candidate = conversation_by_headers(parsed, index)
    if candidate is not None:
        if belongs_to(candidate, customer):
            return candidate, None
        note = "Replied to a thread of another customer; started a new conversation"
    for reference in CASE_REF_RE.findall(parsed.subject):
        case = live_record(index.cases[f"CAS-{reference}".upper()])
        if case is None:
            continue
        if live_customer(case.customer).id != customer.id:
            note = note or f"Quoted case CAS-{reference} of another customer; started a new conversation"
            continue
        if case.id not in index.case_conversations:  # the quoted case was merged into this one
            index.case_conversations[case.id] = db.session.scalar(
                select(Conversation).where(Conversation.case_id == case.id, Conversation.channel == CHANNEL,
                                           Conversation.merged_into_id.is_(None))
                .order_by(Conversation.id.desc()).limit(1))
        conversation = index.case_conversations[case.id]  # its latest email conversation
        if conversation is None:
            conversation = new_conversation(customer, parsed.subject, case=case, status="open",
                                            queue=email_queue_for(case.service), index=index)
        return conversation, None
    for token in conversation_tokens(parsed, recipients):
        conversation = live_conversation(index.by_token[token])
        if conversation is None:
            continue
        if belongs_to(conversation, customer):
            return conversation, None
        note = note or "Used the reply address of another customer's conversation; started a new one"
    return None, note


def new_conversation(customer: Customer, subject: str, *, case=None, status="open", queue=None,
                     index: Optional[ThreadIndex] = None) -> Conversation:
    """Start an email conversation with its own reply token."""
    conversation = Conversation(
        customer_id=customer.id, channel=CHANNEL, status=status, subject=(subject or "")[:300] or None,
        token=secrets.token_hex(10), queue_id=getattr(queue, "id", None), last_seq=0,
    )
    conversation.customer, conversation.case = customer, case  # staged in a batch: not loaded, so set here
    stage(conversation)
    if index is not None:
        index.added_conversation(conversation)
    return conversation


def append_message(conversation: Conversation, author: str, body: str, *, direction: str,
                   html: Optional[str] = None, author_user=None, internal: bool = False,
                   email_message_id: Optional[str] = None, delivery_status: Optional[str] = None,
                   sent_at: Optional[datetime] = None, index: Optional[ThreadIndex] = None) -> Message:
    """Add a message to an email conversation; in a batch (`index`), numbered by it and known to it."""
    message = conversations.append_message(
        conversation, author, body, direction=direction, html=html, author_user=author_user, internal=internal,
        email_message_id=email_message_id, delivery_status=delivery_status, sent_at=sent_at,
        locked=index is not None and conversation.id in index.locked)
    if index is not None:
        index.added_message(conversation, message)
    return message
