"""Who may see what: the one visibility policy every read and write path asks.

Viewers are staff (`User`), residents (`Resident`: the customers a portal account is tied to
through verified identities, or the one case a /track holder proved) and anonymous callers
(`None`). Content is sensitive when it belongs to a sensitive service (`Service.sensitive`,
e.g. Adult Social Care) or to a customer marked `restricted`. Staff read sensitive content
only with a need: a role that needs it (`SENSITIVE_READERS`), being an officer of the owning
service, or being assigned the work (a case, a conversation). Every read of sensitive content
is audited. Where staff may know that something exists but not what it says, they get a
redacted entry ("restricted case — Adult Social Care"). Residents see only their own
customers' cases and messages, never internal notes; anonymous callers see only what a
council would publish on a public map (Open311: publicly reported, non-sensitive, public fields).

The rest of the app uses the predicates (`can_see_*`), the checks (`check_*`, which raise
`Forbidden` for staff and `NotFound` for residents and anonymous callers, so nothing leaks
that a record exists), the SQL conditions for lists (`*_condition`) and `redact_timeline`.

One module of about 600 lines on purpose: a predicate and the SQL condition for the same list must
change together and be reviewed side by side, and every path imports the whole policy from one
place. Its sections (what owns what, predicates, audited checks, lists, redaction) keep it navigable.
"""
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional

from flask import has_request_context, request
from sqlalchemy import and_, event, exists, false, not_, or_, select, true
from sqlalchemy.orm import object_session

from .audit import audit
from .auth.roles import CHAT_STAFF, RECORDS_OFFICERS, SENSITIVE_READERS, SERVICE_OFFICER, STAFF, SUPERVISORS
from .conversations.lifecycle import LIVE_CHAT
from .errors import Forbidden, NotFound
from .extensions import db
from .models import (
    Attachment, AuditLog, Case, CaseEvent, Contact, Conversation, Customer, Message, Queue, Service, User,
)

# Channels a resident reports through in the open: what Open311 may publish.
PUBLIC_REPORT_CHANNELS = ("open311", "web_form")
REDACTED = "restricted"


@dataclass(frozen=True)
class Resident:
    """A resident viewer: the customers their account holds verified, or one case they tracked."""

    customer_ids: frozenset = field(default_factory=frozenset)
    case_ids: frozenset = field(default_factory=frozenset)


def is_staff(viewer) -> bool:
    """Say whether the viewer is an active member of staff."""
    return isinstance(viewer, User) and bool(viewer.active) and viewer.role in STAFF


def _is_reader(user: User) -> bool:
    return user.has_role(*SENSITIVE_READERS)


# ---- what owns what -------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceInfo:
    """What the policy needs of a service, kept between queries (a few rows, read on every chat)."""

    id: int
    code: str
    name: str
    sensitive: bool


SERVICE_CACHE_SECONDS = 10.0


def _services_by_code() -> dict:
    """Return {code: ServiceInfo}, re-read at most every few seconds per database session."""
    cached = db.session.info.get("visibility_services")
    now = time.monotonic()
    if cached is None or now - cached[0] > SERVICE_CACHE_SECONDS:
        rows = db.session.execute(select(Service.id, Service.code, Service.name, Service.sensitive)).all()
        cached = (now, {r.code: ServiceInfo(r.id, r.code, r.name, bool(r.sensitive)) for r in rows})
        db.session.info["visibility_services"] = cached
    return cached[1]


def forget_services() -> None:
    """Drop the cached services (after a service is marked sensitive or not)."""
    db.session.info.pop("visibility_services", None)


@event.listens_for(Service, "after_insert")
@event.listens_for(Service, "after_update")
def _service_changed(mapper, connection, target) -> None:
    session = object_session(target)
    if session is not None:
        session.info.pop("visibility_services", None)


def topic_service(topic: Optional[str]) -> Optional[Service]:
    """Return the service a webchat topic belongs to (the topic is the service's code)."""
    return _services_by_code().get(topic) if topic else None


def conversation_service(conversation: Conversation) -> Optional[Service]:
    """Return the service a conversation belongs to: its case's, its queue's, else its chat topic's.

    A sensitive topic wins over a queue without a service or of an ordinary one, so an adult
    social care chat stays sensitive wherever it queues.
    """
    if conversation.case is not None:
        return conversation.case.service
    by_topic = topic_service(conversation.topic)
    if by_topic is not None and by_topic.sensitive:
        return by_topic
    if conversation.queue is not None and conversation.queue.service is not None:
        return conversation.queue.service
    return by_topic


def service_label(service: Optional[Service]) -> str:
    """Return the name shown in a redacted entry."""
    return service.name if service is not None else "restricted service"


# ---- predicates -----------------------------------------------------------------------------

def can_see_service(viewer, service: Optional[Service]) -> bool:
    """Say whether the viewer may read the content of a service's cases and conversations."""
    if service is None or not service.sensitive:
        return is_staff(viewer)
    if not is_staff(viewer):
        return False
    return _is_reader(viewer) or (viewer.role == SERVICE_OFFICER and viewer.service_id == service.id)


def _works_for(user: User, customer_id: int) -> bool:
    """Say whether the user is assigned work of this customer (a case or a conversation); asked once per request."""
    cache = request.environ.setdefault("crm.visibility.works_for", {}) if has_request_context() else {}
    key = (user.id, customer_id)
    if key not in cache:
        cache[key] = bool(db.session.scalar(select(
            exists().where(Case.customer_id == customer_id, Case.assignee_id == user.id)
            | exists().where(Conversation.customer_id == customer_id, Conversation.assignee_id == user.id))))
    return cache[key]


def can_see_customer(viewer, customer: Customer) -> bool:
    """Say whether the viewer may read a customer's record (contact details, timeline content)."""
    if isinstance(viewer, Resident):
        return customer.id in viewer.customer_ids
    if not is_staff(viewer):
        return False
    if not customer.restricted:
        return True
    if _is_reader(viewer) or viewer.has_role(*RECORDS_OFFICERS):
        return True
    if viewer.role == SERVICE_OFFICER and viewer.service is not None and viewer.service.sensitive:
        return True
    return _works_for(viewer, customer.id)


def can_see_vulnerability(viewer, customer: Customer) -> bool:
    """Say whether the viewer may read a customer's vulnerability notes (others only see a flag)."""
    if not is_staff(viewer) or not can_see_customer(viewer, customer):
        return False
    if _is_reader(viewer):
        return True
    return viewer.role == SERVICE_OFFICER and viewer.service is not None and viewer.service.sensitive


def can_edit_vulnerability(viewer, customer: Customer) -> bool:
    """Say whether the viewer may set or clear vulnerability notes and the restricted flag."""
    return can_see_vulnerability(viewer, customer)


def can_see_case(viewer, case: Case) -> bool:
    """Say whether the viewer may read a case's content (title, description, notes, files)."""
    if isinstance(viewer, Resident):
        return case.id in viewer.case_ids or case.customer_id in viewer.customer_ids
    if not is_staff(viewer):
        return False
    if case.assignee_id == viewer.id:
        return True
    return can_see_service(viewer, case.service) and can_see_customer(viewer, case.customer)


def can_work_case(viewer, case: Case) -> bool:
    """Say whether staff may change a case's status, owner or service, or post updates."""
    if not is_staff(viewer) or not can_see_case(viewer, case):
        return False
    if viewer.has_role(*SUPERVISORS):
        return True
    return viewer.role == SERVICE_OFFICER and viewer.service_id == case.service_id


def is_live_chat_of_another(viewer: User, conversation: Conversation) -> bool:
    """Say whether a conversation is a live chat held by someone else (not a supervisor's to read)."""
    return (conversation.channel == "webchat" and conversation.status in LIVE_CHAT
            and conversation.assignee_id is not None and conversation.assignee_id != viewer.id
            and not viewer.has_role(*SUPERVISORS))


def can_see_conversation(viewer, conversation: Conversation) -> bool:
    """Say whether the viewer may read a conversation and its messages (staff: notes included)."""
    if isinstance(viewer, Resident):
        return conversation.customer_id in viewer.customer_ids
    if not is_staff(viewer):
        return False
    if conversation.assignee_id == viewer.id:
        return True
    if is_live_chat_of_another(viewer, conversation):
        return False
    if conversation.case is not None and conversation.case.assignee_id == viewer.id:
        return True
    return (can_see_service(viewer, conversation_service(conversation))
            and can_see_customer(viewer, conversation.customer))


def can_write_conversation(viewer, conversation: Conversation) -> bool:
    """Say whether staff may reply, add a note to, assign or resolve a conversation.

    A live chat is written in only by the agent who holds it (or a supervisor), as on the sockets.
    """
    if not is_staff(viewer) or not can_see_conversation(viewer, conversation):
        return False
    if conversation.channel == "webchat" and conversation.status in LIVE_CHAT:
        return conversation.assignee_id == viewer.id or viewer.has_role(*SUPERVISORS)
    return True


def can_take_chat(viewer, conversation: Conversation, skills: Iterable[str] = ()) -> bool:
    """Say whether chat staff may accept a waiting chat: a sensitive one needs the need to know or its topic as a skill."""
    if not is_staff(viewer) or not viewer.has_role(*CHAT_STAFF):
        return False
    service = conversation_service(conversation)
    if can_see_service(viewer, service) and can_see_customer(viewer, conversation.customer):
        return True
    return conversation.topic is not None and conversation.topic in set(skills)


def can_see_message(viewer, message: Message) -> bool:
    """Say whether the viewer may read a message (residents never see internal notes)."""
    if isinstance(viewer, Resident) and message.internal:
        return False
    return can_see_conversation(viewer, message.conversation)


def can_see_contact(viewer, contact: Contact) -> bool:
    """Say whether the viewer may read a contact's content (summary, notes)."""
    if not is_staff(viewer):
        return False
    if contact.agent_id == viewer.id:
        return True
    if contact.case is not None and not can_see_case(viewer, contact.case):
        return False
    if contact.conversation is not None and not can_see_conversation(viewer, contact.conversation):
        return False
    return can_see_customer(viewer, contact.customer)


def can_see_case_event(viewer, event: CaseEvent) -> bool:
    """Say whether the viewer may read a case event (residents: public updates only)."""
    if isinstance(viewer, Resident):
        return event.public and can_see_case(viewer, event.case)
    return can_see_case(viewer, event.case)


def can_see_attachment(viewer, attachment: Attachment) -> bool:
    """Say whether the viewer may download a file: the rule of its message's conversation, or its case's."""
    if attachment.message is not None:
        if not can_see_message(viewer, attachment.message):
            return False
    if attachment.case_id is not None:
        case = db.session.get(Case, attachment.case_id)
        if case is None or not can_see_case(viewer, case):
            return False
    return attachment.message is not None or attachment.case_id is not None


def can_see_audit(viewer, entry: Optional[AuditLog] = None) -> bool:
    """Say whether the viewer may read the audit trail (records officers and admins; nobody else)."""
    return is_staff(viewer) and viewer.has_role(*RECORDS_OFFICERS)


def open311_public(case: Case) -> bool:
    """Say whether a case may appear on Open311: publicly reported, of an ordinary service, not restricted."""
    return (case.reference is not None and case.source_channel in PUBLIC_REPORT_CHANNELS
            and not case.service.sensitive and not case.customer.restricted)


def open311_condition():
    """Return a WHERE condition keeping only the cases Open311 may publish (see open311_public)."""
    return and_(Case.reference.is_not(None), Case.source_channel.in_(PUBLIC_REPORT_CHANNELS),
                not_(exists().where(Service.id == Case.service_id, Service.sensitive.is_(True))),
                not_(exists().where(Customer.id == Case.customer_id, Customer.restricted.is_(True))))


def open311_description(case: Case) -> Optional[str]:
    """Return the description Open311 may publish: what a reporter wrote for the public map, else nothing."""
    return case.description if case.source_channel == "open311" else None


# ---- sensitivity and audited checks ---------------------------------------------------------

def case_is_sensitive(case: Case) -> bool:
    """Say whether a case's content is sensitive (its service, or its customer restricted)."""
    return bool(case.service.sensitive or case.customer.restricted)


def conversation_is_sensitive(conversation: Conversation) -> bool:
    """Say whether a conversation's content is sensitive."""
    service = conversation_service(conversation)
    return bool((service is not None and service.sensitive) or conversation.customer.restricted)


def _audit_read(viewer, action: str, target_type: str, target_id, **details) -> None:
    """Audit a read of sensitive content once per request (a page that shows a thing twice is one read)."""
    seen = request.environ.setdefault("crm.visibility.audited", set()) if has_request_context() else set()
    key = (action, target_type, target_id)
    if key not in seen:
        seen.add(key)
        audit(viewer, action, target_type, target_id, **details)


def _refuse(viewer, what: str):
    if is_staff(viewer):
        raise Forbidden(f"You may not see this {what}")
    raise NotFound(f"No such {what}")


def check_customer(viewer, customer: Customer) -> Customer:
    """Refuse a customer record the viewer may not read; audit reads of restricted ones."""
    if not can_see_customer(viewer, customer):
        _refuse(viewer, "customer")
    if customer.restricted and is_staff(viewer):
        _audit_read(viewer, "customer.view_restricted", "customer", customer.id)
    return customer


def check_vulnerability(viewer, customer: Customer) -> bool:
    """Say whether to show the vulnerability notes, auditing the read when they are shown."""
    if customer.vulnerability_notes and can_see_vulnerability(viewer, customer):
        _audit_read(viewer, "customer.view_sensitive", "customer", customer.id)
        return True
    return False


def check_case(viewer, case: Case) -> Case:
    """Refuse a case the viewer may not read; audit reads of sensitive ones."""
    if not can_see_case(viewer, case):
        _refuse(viewer, "case")
    if is_staff(viewer) and case_is_sensitive(case):
        _audit_read(viewer, "case.view_sensitive", "case", case.id, reference=case.reference)
    return case


def check_work_case(viewer, case: Case) -> Case:
    """Refuse a change to a case the viewer may not work."""
    check_case(viewer, case)
    if not can_work_case(viewer, case):
        raise Forbidden("You may not change this case")
    return case


def check_conversation(viewer, conversation: Conversation) -> Conversation:
    """Refuse a conversation the viewer may not read; audit reads of sensitive ones."""
    if not can_see_conversation(viewer, conversation):
        if is_staff(viewer) and is_live_chat_of_another(viewer, conversation):
            raise Forbidden("That chat is held by another agent", code="not_yours")
        _refuse(viewer, "conversation")
    if is_staff(viewer) and conversation_is_sensitive(conversation):
        service = conversation_service(conversation)
        _audit_read(viewer, "conversation.view_sensitive", "conversation", conversation.id,
              service=service.code if service else None)
    return conversation


def check_write_conversation(viewer, conversation: Conversation) -> Conversation:
    """Refuse a write (reply, note, assign, resolve) into a conversation the viewer may not work."""
    if not can_write_conversation(viewer, conversation):
        if is_staff(viewer) and conversation.channel == "webchat" and conversation.status in LIVE_CHAT:
            raise Forbidden("Only the agent who holds a live chat writes in it", code="not_yours")
        _refuse(viewer, "conversation")
    return conversation


def check_attachment(viewer, attachment: Attachment) -> Attachment:
    """Refuse a file the viewer may not download; audit downloads of sensitive ones."""
    if not can_see_attachment(viewer, attachment):
        _refuse(viewer, "attachment")
    if is_staff(viewer):
        sensitive = (attachment.message is not None and conversation_is_sensitive(attachment.message.conversation)) \
            or (attachment.case_id is not None and case_is_sensitive(db.session.get(Case, attachment.case_id)))
        if sensitive:
            _audit_read(viewer, "attachment.view_sensitive", "attachment", attachment.id)
    return attachment


def check_contact_move(viewer, contact: Contact, target: Optional[Case] = None) -> None:
    """Refuse moving a contact off (or onto) a case the viewer may not work with."""
    if not can_see_contact(viewer, contact):
        _refuse(viewer, "contact")
    if contact.case is not None and case_is_sensitive(contact.case) and not can_work_case(viewer, contact.case):
        raise Forbidden("That contact belongs to a restricted case")
    if target is not None:
        check_case(viewer, target)
        if contact.case is not None and contact.case.service.sensitive and target.service_id != contact.case.service_id:
            raise Forbidden(f"A contact of a restricted case stays with {contact.case.service.name}")


def check_case_merge(viewer, source: Case, target: Case) -> None:
    """Refuse a merge that would make a sensitive case's content readable by more people."""
    check_work_case(viewer, source)
    check_work_case(viewer, target)
    if source.service.sensitive and not (target.service.sensitive and target.service_id == source.service_id):
        raise Forbidden("A restricted case merges only into a case of the same restricted service")
    if source.customer.restricted and not target.customer.restricted:
        raise Forbidden("A restricted customer's case merges only into another restricted record")


def check_customer_merge(viewer, source: Customer, target: Customer) -> None:
    """Refuse a customer merge the viewer may not make: both records must be theirs to read, and a
    restricted record merges only into a restricted one (or the merge would open it to everyone)."""
    if not can_see_customer(viewer, source) or not can_see_customer(viewer, target):
        _refuse(viewer, "customer")
    if source.restricted and not target.restricted:
        raise Forbidden("A restricted record merges only into another restricted record")


def check_conversation_move(viewer, conversation: Conversation, queue: Optional[Queue] = None) -> None:
    """Refuse a move that would take a sensitive conversation out of its service's hands (to an ordinary queue)."""
    check_conversation(viewer, conversation)
    if queue is None or not conversation_is_sensitive(conversation) or conversation.customer.restricted:
        return
    kept = conversation.case is not None or (topic_service(conversation.topic) is not None
                                             and topic_service(conversation.topic).sensitive)
    if not kept and not (queue.service is not None and queue.service.sensitive):
        raise Forbidden("A sensitive conversation moves only to a queue of a sensitive service")


# ---- lists ----------------------------------------------------------------------------------

def hidden_service_ids(viewer) -> list[int]:
    """Return the ids of sensitive services whose content this viewer may not read."""
    return [s.id for s in _services_by_code().values() if s.sensitive and not can_see_service(viewer, s)]


def _restricted_allowed(viewer) -> bool:
    return is_staff(viewer) and (_is_reader(viewer) or (
        viewer.role == SERVICE_OFFICER and viewer.service is not None and viewer.service.sensitive))


def case_condition(viewer):
    """Return a WHERE condition keeping only the cases this viewer may read."""
    if isinstance(viewer, Resident):
        return or_(Case.id.in_(viewer.case_ids or [-1]), Case.customer_id.in_(viewer.customer_ids or [-1]))
    if not is_staff(viewer):
        return false()
    conditions = []
    hidden = hidden_service_ids(viewer)
    if hidden:
        conditions.append(Case.service_id.notin_(hidden))
    if not _restricted_allowed(viewer):
        conditions.append(not_(exists().where(Customer.id == Case.customer_id, Customer.restricted.is_(True))))
    if not conditions:
        return true()
    return or_(Case.assignee_id == viewer.id, and_(*conditions))


def conversation_condition(viewer):
    """Return a WHERE condition keeping only the conversations this viewer may read (for lists)."""
    if isinstance(viewer, Resident):
        return Conversation.customer_id.in_(viewer.customer_ids or [-1])
    if not is_staff(viewer):
        return false()
    conditions = []
    hidden = hidden_service_ids(viewer)
    if hidden:
        sensitive_topics = [s.code for s in _services_by_code().values() if s.id in hidden]
        via_case = exists().where(Case.id == Conversation.case_id, Case.service_id.in_(hidden))
        via_queue = and_(Conversation.case_id.is_(None), exists().where(
            Queue.id == Conversation.queue_id, Queue.service_id.in_(hidden)))
        via_topic = and_(Conversation.case_id.is_(None), Conversation.topic.in_(sensitive_topics))
        conditions.append(not_(or_(via_case, via_queue, via_topic)))
    if not _restricted_allowed(viewer):
        conditions.append(not_(exists().where(Customer.id == Conversation.customer_id,
                                              Customer.restricted.is_(True))))
    if not viewer.has_role(*SUPERVISORS):
        conditions.append(not_(and_(Conversation.channel == "webchat", Conversation.status.in_(LIVE_CHAT),
                                    Conversation.assignee_id.is_not(None))))
    if not conditions:
        return true()
    return or_(Conversation.assignee_id == viewer.id, and_(*conditions))


# ---- redaction ------------------------------------------------------------------------------

@dataclass
class RedactedEntry:
    """A timeline entry the viewer may know exists but not read."""

    id: int
    source_kind: str
    occurred_at: object
    label: str
    channel: Optional[str] = None
    redacted: bool = True


def redaction_label(case: Optional[Case] = None, conversation: Optional[Conversation] = None,
                    customer: Optional[Customer] = None) -> str:
    """Return the words a redacted entry shows, e.g. "restricted case — Adult Social Care"."""
    if case is not None and case.service.sensitive:
        return f"restricted case — {case.service.name}"
    if conversation is not None:
        service = conversation_service(conversation)
        if service is not None and service.sensitive:
            return f"restricted conversation — {service.name}"
    if customer is not None and customer.restricted:
        return "restricted record"
    return "restricted entry"


def redact_timeline(viewer, entries):
    """Return timeline entries with those the viewer may not read replaced by redacted ones (kind "redacted").

    Reads of sensitive entries that are shown are audited once per case or conversation.
    """
    shown, audited = [], set()
    for kind, row in entries:
        if kind == "contact":
            visible = can_see_contact(viewer, row)
            case, conversation = row.case, row.conversation
            channel = row.channel
        else:
            visible = can_see_case_event(viewer, row)
            case, conversation = row.case, None
            channel = row.case.source_channel if row.case else None
        if not visible:
            customer = row.customer if kind == "contact" else row.case.customer
            label = redaction_label(case, conversation, customer)
            shown.append(("redacted", RedactedEntry(row.id, kind, row.occurred_at, label, channel)))
            continue
        if is_staff(viewer):
            if case is not None and case_is_sensitive(case) and ("case", case.id) not in audited:
                audited.add(("case", case.id))
                _audit_read(viewer, "case.view_sensitive", "case", case.id, reference=case.reference, via="timeline")
            if conversation is not None and conversation_is_sensitive(conversation) \
                    and ("conversation", conversation.id) not in audited:
                audited.add(("conversation", conversation.id))
                _audit_read(viewer, "conversation.view_sensitive", "conversation", conversation.id, via="timeline")
        shown.append((kind, row))
    return shown


@dataclass
class RedactedCustomer:
    """A restricted customer as staff without the need see it: that the record exists, nothing more."""

    id: int
    name: str = "Restricted record"
    restricted: bool = True
    redacted: bool = True
    primary_email = None
    primary_phone = None
    primary_address = None
    merged_into_id = None
    created_at = None
    vulnerability_notes = None

    @property
    def identities(self):
        return []

    @property
    def addresses(self):
        return []


def search_results(viewer, query: str, customers) -> list:
    """Return search results as the viewer may see them: restricted records redacted, nothing found
    through the reference of a case the viewer may not read."""
    from .customers.search import CASE_REFERENCE_RE  # noqa: PLC0415  (customers imports the policy's users)

    found = CASE_REFERENCE_RE.match((query or "").strip())
    if found:
        case = db.session.scalar(select(Case).where(Case.reference == f"CAS-{int(found.group(1)):06d}"))
        if case is not None and not can_see_case(viewer, case):
            return []
    return [c if can_see_customer(viewer, c) else RedactedCustomer(c.id) for c in customers]


# The name the cases area's attachment code asks for.
check_view_attachment = check_attachment


def redact_chat_summary(conversation: Conversation, summary: dict) -> dict:
    """Return a waiting chat as every agent's shared queue shows it: a sensitive one without who or what."""
    if not conversation_is_sensitive(conversation):
        return summary
    return dict(summary, name=redaction_label(conversation=conversation, customer=conversation.customer),
                customer_name=None, email=None, phone=None, customer_id=None, case_reference=None, redacted=True)
