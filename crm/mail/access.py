"""Who may read a conversation: those of a sensitive service only by the people who need them.

A conversation belongs to a service through its case, else through its queue. When that
service is sensitive (adult social care), its conversations are for supervisors, admins, the
service's own officers and the member of staff the conversation is assigned to (a supervisor
gives an agent the need to know by assigning it); every read of one is audited. The rule is
the cases area's (`crm.cases.queries.can_view_service`), extended by the assignment.
"""
from typing import Optional

from flask import abort
from sqlalchemy import and_, exists, not_, or_, true

from ..audit import audit
from ..cases.queries import can_view_service, hidden_services
from ..models import Case, Conversation, Queue, Service, User


def owning_service(conversation: Conversation) -> Optional[Service]:
    """Return the service a conversation belongs to: its case's, else its queue's."""
    if conversation.case is not None:
        return conversation.case.service
    return conversation.queue.service if conversation.queue is not None else None


def can_view_conversation(user: User, conversation: Conversation) -> bool:
    """Say whether a member of staff may read a conversation."""
    service = owning_service(conversation)
    return service is None or can_view_service(user, service) or conversation.assignee_id == user.id


def check_view_conversation(user: User, conversation: Conversation) -> None:
    """Refuse (403) a conversation the user may not read; audit reads of sensitive ones."""
    if not can_view_conversation(user, conversation):
        abort(403)
    service = owning_service(conversation)
    if service is not None and service.sensitive:
        audit(user, "conversation.view_sensitive", "conversation", conversation.id, service=service.code)


def visible_conversations(user: User):
    """Return a WHERE condition keeping only the conversations this user may read (for lists)."""
    hidden = hidden_services(user)
    if not hidden:
        return true()
    via_case = exists().where(Case.id == Conversation.case_id, Case.service_id.in_(hidden))
    via_queue = and_(Conversation.case_id.is_(None), exists().where(
        Queue.id == Conversation.queue_id, Queue.service_id.in_(hidden)))
    return or_(Conversation.assignee_id == user.id, not_(or_(via_case, via_queue)))
