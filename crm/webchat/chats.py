"""A chat's life outside the queue: starting, loading, leaving a message, ending, closing, cases. Never commits."""
import secrets
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import func, literal, or_, select

from .. import visibility
from ..batching import stage, write_batch
from ..cases.service import open_case
from ..customers.identity import resolve_customer, set_case_contact
from ..customers.timeline import record_contact
from ..errors import Conflict, DomainError, NotFound, ValidationFailed
from ..extensions import db
from ..models import (
    OUTCOMES, Case, Category, ChatSession, Conversation, Customer, Message, Queue, Service, User, utcnow,
)
from ..signals import message_stored, send_after_commit
from .messages import messages_after, store_message, system_message
from .rules import CHANNEL, HELD_STATES, LIVE_STATES, cfg, clean_int, clean_text


def open_chats_for(visitor_id: Optional[str], ip: Optional[str]) -> tuple[int, int]:
    """Return how many live chats this visitor id and this address have (one query)."""
    matches = [c for c in (ChatSession.visitor_id == visitor_id if visitor_id else None,
                           ChatSession.visitor_ip == ip if ip else None) if c is not None]
    if not matches:
        return 0, 0
    by_visitor = func.count().filter(ChatSession.visitor_id == visitor_id) if visitor_id else literal(0)
    by_ip = func.count().filter(ChatSession.visitor_ip == ip) if ip else literal(0)
    row = db.session.execute(select(by_visitor, by_ip).select_from(ChatSession).join(Conversation)
                             .where(Conversation.status.in_(LIVE_STATES), or_(*matches))).one()
    return int(row[0] or 0), int(row[1] or 0)


def chat_queue_for(topic: Optional[str]) -> Optional[Queue]:
    """Return the webchat queue for a topic (queue code webchat_<topic>), else the general one."""
    queues = db.session.scalars(select(Queue).where(Queue.channel == CHANNEL)).all()
    by_code = {q.code: q for q in queues}
    return by_code.get(f"webchat_{topic}") or by_code.get("webchat") or (queues[0] if queues else None)


@dataclass
class StartRequest:
    """What a resident's `start` asked for, as the batched starter takes it."""

    payload: dict
    visitor_id: Optional[str]
    ip: Optional[str]
    sid: Optional[str] = None  # the resident's socket, which joins the chat's room before the commit


def _clean_start(payload, visitor_id):
    """Validate the pre-chat form; return (name, email, phone, topic, visitor_id)."""
    if not isinstance(payload, dict):
        raise ValidationFailed("start needs an object", {"payload": ["must be an object"]})
    name = clean_text(payload.get("name"), "name", cfg("WEBCHAT_MAX_NAME_CHARS"))
    email = clean_text(payload.get("email"), "email", 254, required=False) or None
    phone = clean_text(payload.get("phone"), "phone", 40, required=False) or None
    topic = clean_text(payload.get("topic"), "topic", 60, required=False) or None
    if visitor_id is not None and (not isinstance(visitor_id, str) or len(visitor_id) > 64):
        visitor_id = None
    return name, email, phone, topic, visitor_id


def _too_many(by_visitor: int, by_ip: int) -> None:
    if by_visitor >= cfg("WEBCHAT_MAX_OPEN_PER_VISITOR") or by_ip >= cfg("WEBCHAT_MAX_OPEN_PER_IP"):
        raise DomainError("You already have a chat open", code="too_many_chats", status=429)


def _new_chat(fields, ip, queue, now) -> Conversation:
    name, email, phone, topic, visitor_id = fields
    customer = resolve_customer(name, email, phone, source="chat")
    conversation = Conversation(
        customer_id=customer.id, channel=CHANNEL, status="queued", subject=f"Webchat: {topic or 'general'}",
        token=secrets.token_urlsafe(32), queue_id=queue.id if queue else None, topic=topic, last_seq=0,
        created_at=now, updated_at=now)
    # One flush for both rows: the chat session takes the conversation's id through the relationship.
    conversation.chat = ChatSession(visitor_id=visitor_id, visitor_ip=ip, name=name, email=email, phone=phone,
                                    queued_at=now, priority=0)
    return conversation


def start_chat(payload, visitor_id: Optional[str], ip: Optional[str]) -> Conversation:
    """Start a chat from the pre-chat form: resolve the customer, queue the conversation."""
    fields = _clean_start(payload, visitor_id)
    _too_many(*open_chats_for(fields[4], ip))
    conversation = _new_chat(fields, ip, chat_queue_for(fields[3]), utcnow())
    db.session.add(conversation)
    db.session.flush()
    return conversation


def _open_chats_by(column, values) -> dict:
    if not values:
        return {}
    return dict(db.session.execute(select(column, func.count()).select_from(ChatSession).join(Conversation)
                                   .where(Conversation.status.in_(LIVE_STATES), column.in_(list(values)))
                                   .group_by(column)).all())


def start_chats(requests) -> list:
    """Start many chats in one flush; return per request {"conversation_id", "token"} or the DomainError refusing it.

    What a burst of `start`s costs: two queries for every open-chat limit, one per resident only
    for the identifiers they gave, and one multi-row INSERT per table. A first message is stored
    with its chat (seq 1). Never commits; the caller commits before anyone is told.
    """
    results, accepted = [None] * len(requests), []
    for n, request in enumerate(requests):
        try:
            fields = _clean_start(request.payload, request.visitor_id)
            first = request.payload.get("message")
            body = clean_text(first, "message", cfg("WEBCHAT_MAX_MESSAGE_CHARS")) \
                if isinstance(first, str) and first.strip() else None
            accepted.append((n, request, fields, body))
        except DomainError as refusal:
            results[n] = refusal
    if not accepted:
        return results
    by_visitor = _open_chats_by(ChatSession.visitor_id, {f[4] for _, _, f, _ in accepted if f[4]})
    by_ip = _open_chats_by(ChatSession.visitor_ip, {r.ip for _, r, _, _ in accepted if r.ip})
    queues, now, made = {}, utcnow(), []
    with write_batch(len(accepted)):
        for n, request, fields, body in accepted:
            visitor_id = fields[4]
            try:
                _too_many(by_visitor.get(visitor_id, 0) if visitor_id else 0,
                          by_ip.get(request.ip, 0) if request.ip else 0)
            except DomainError as refusal:
                results[n] = refusal
                continue
            if visitor_id:
                by_visitor[visitor_id] = by_visitor.get(visitor_id, 0) + 1
            if request.ip:
                by_ip[request.ip] = by_ip.get(request.ip, 0) + 1
            topic = fields[3]
            if topic not in queues:
                queues[topic] = chat_queue_for(topic)
            conversation = stage(_new_chat(fields, request.ip, queues[topic], now), flush=False)
            if body is not None:
                conversation.last_seq, conversation.last_message_at = 1, now
                message = stage(Message(conversation_id=conversation.id, seq=1, author="resident",
                                        direction="inbound", body=body, internal=False,
                                        client_id=f"start-{conversation.id}", created_at=now), flush=False)
                send_after_commit(message_stored, message_id=message.id, conversation_id=conversation.id,
                                  channel=CHANNEL, author="resident", internal=False, source=CHANNEL)
            made.append((n, conversation))
        db.session.flush()
    for n, conversation in made:
        results[n] = {"conversation_id": conversation.id, "token": conversation.token}
    return results


def held_chats(user_ids) -> list[Conversation]:
    """Return the open chats these agents hold, oldest first."""
    if not user_ids:
        return []
    return list(db.session.scalars(select(Conversation).where(
        Conversation.channel == CHANNEL, Conversation.assignee_id.in_(list(user_ids)),
        Conversation.status.in_(HELD_STATES)).order_by(Conversation.id)))


def chats_by_id(conversation_ids) -> list[Conversation]:
    """Return these webchat conversations (with their chat sessions)."""
    if not conversation_ids:
        return []
    chats = list(db.session.scalars(select(Conversation).where(
        Conversation.channel == CHANNEL, Conversation.id.in_(list(conversation_ids)))))
    load_related(chats)
    return chats


def load_related(conversations) -> list:
    """Load the customers, queues and cases of these chats in one query each, not one per chat.

    Many-to-one lazy loads then find them in the session's identity map, which holds objects
    weakly: keep the returned list while reading the relationships.
    """
    loaded = []
    for model, key in ((Customer, "customer_id"), (Queue, "queue_id"), (Case, "case_id")):
        ids = {getattr(c, key) for c in conversations} - {None}
        if ids:
            loaded.extend(db.session.scalars(select(model).where(model.id.in_(ids))))
    return loaded


# ---- endings ---------------------------------------------------------------------------------

def offline_category(topic: Optional[str]) -> Optional[Category]:
    """Return the category a left message is filed under: the topic's, its service's first, or the default."""
    active = select(Category).where(Category.active.is_(True))
    if topic:
        category = db.session.scalar(active.where(Category.code == topic))
        if category is None:
            category = db.session.scalar(active.join(Category.service).where(Service.code == topic)
                                         .order_by(Category.id))
        if category is not None:
            return category
    return db.session.scalar(active.where(Category.code == cfg("WEBCHAT_OFFLINE_CATEGORY")))


def leave_message(conversation: Conversation, body, email=None) -> str:
    """Turn a chat nobody could take into a left message: a case, or an email conversation.

    The same conversation carries on (its messages stay), with a reference for the resident.
    """
    if conversation.status not in LIVE_STATES:
        raise Conflict("This chat has ended", code="ended")
    body = clean_text(body, "message", cfg("WEBCHAT_MAX_MESSAGE_CHARS"))
    email = clean_text(email, "email", 254, required=False) or conversation.chat.email
    if email and email != conversation.chat.email:
        resolve_customer(conversation.chat.name, email, None, source="chat")
        conversation.chat.email = email
    store_message(conversation.id, "resident", body)
    transcript = "\n".join(f"{m.author}: {m.body}" for m in messages_after(conversation.id, 0))
    category = offline_category(conversation.topic)
    now = utcnow()
    contact = record_contact(conversation.customer, CHANNEL, summary="Message left on webchat",
                             notes=body, category=category.code if category else conversation.topic,
                             outcome="case_raised" if category else "pending",
                             started_at=conversation.created_at, ended_at=now, conversation=conversation)
    conversation.assignee_id = None
    conversation.chat.ended_at = now
    if category is not None:
        case = open_case(conversation.customer, category.service.code, category.code,
                         f"Webchat message: {body[:80]}", transcript, contact=contact, source_channel=CHANNEL)
        set_case_contact(case, email, conversation.chat.phone)
        conversation.case_id = case.id
        conversation.status = "closed"
        conversation.closed_at = now
        reference = case.reference
    else:
        # No service to route to: the conversation becomes an email thread staff answer later.
        conversation.channel = "email" if email else CHANNEL
        conversation.status = "open"
        reference = f"WEB-{conversation.id:06d}"
    conversation.chat.offline_reference = reference
    system_message(conversation, f"Thank you. Your message has been passed on; your reference is {reference}.")
    return reference


def end_by_resident(conversation: Conversation) -> None:
    """The resident ends the chat; unanswered ones are recorded as abandoned at once."""
    if conversation.status not in LIVE_STATES:
        return
    now = utcnow()
    conversation.chat.ended_at = now
    system_message(conversation, "The resident ended the chat.")
    if conversation.status == "queued":
        conversation.status = "closed"
        conversation.closed_at = now
        record_contact(conversation.customer, CHANNEL, summary="Webchat abandoned in the queue",
                       outcome="abandoned", started_at=conversation.created_at, ended_at=now,
                       conversation=conversation, category=conversation.topic)
    else:
        conversation.status = "ended"  # the agent still closes it with an outcome


def close_chat(conversation: Conversation, agent: User, outcome, summary=None):
    """Close a chat with an outcome: one webchat Contact on the timeline, transcript in its conversation."""
    if outcome not in OUTCOMES:
        raise ValidationFailed("Unknown outcome", {"outcome": [f"must be one of {', '.join(OUTCOMES)}"]})
    summary = clean_text(summary, "summary", 300, required=False)
    now = utcnow()
    was_live = conversation.status == "assigned"
    if was_live:
        system_message(conversation, "The adviser closed the chat. Thank you for contacting us.")
    conversation.status = "closed"
    conversation.closed_at = now
    conversation.chat.ended_at = conversation.chat.ended_at or now
    return record_contact(
        conversation.customer, CHANNEL, summary=summary or f"Webchat: {conversation.topic or 'general enquiry'}",
        category=conversation.topic, outcome=outcome, agent=agent,
        started_at=conversation.chat.first_assigned_at or conversation.chat.assigned_at or conversation.created_at,
        ended_at=now,
        conversation=conversation, case=conversation.case), was_live


def raise_case(conversation: Conversation, agent: User, payload):
    """Raise a case for the chat's customer with the cases service."""
    if not isinstance(payload, dict):
        raise ValidationFailed("raise_case needs an object", {"payload": ["must be an object"]})
    transcript = "\n".join(f"{m.author}: {m.body}" for m in messages_after(conversation.id, 0))
    description = clean_text(payload.get("description"), "description", 5000, required=False) or transcript
    case = open_case(conversation.customer, payload.get("service") or "", payload.get("category") or "",
                     clean_text(payload.get("title"), "title", 200), description,
                     priority=payload.get("priority") or "normal", actor=agent, source_channel=CHANNEL)
    set_case_contact(case, conversation.chat.email, conversation.chat.phone)
    conversation.case_id = case.id
    return case


def rate(conversation: Conversation, rating) -> None:
    """Record the resident's satisfaction (1-5)."""
    rating = clean_int(rating, "rating", 1)
    if rating > 5:
        raise ValidationFailed("rating is 1 to 5", {"rating": ["1 to 5"]})
    conversation.chat.rating = rating


def link_customer(conversation: Conversation, customer_id, actor: Optional[User] = None) -> None:
    """Point the chat at the right customer when identity resolution picked another (one the actor may read)."""
    from ..customers.identity import live_customer
    from ..models import Customer

    customer = live_customer(db.session.get(Customer, clean_int(customer_id, "customer_id", 1)))
    if customer is None:
        raise NotFound("No such customer")
    if actor is not None:
        visibility.check_customer(actor, customer)  # linking must not be a way into a restricted record
    conversation.customer_id = customer.id
