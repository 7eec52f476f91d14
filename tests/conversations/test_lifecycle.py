"""Conversation statuses: which may move, what a resident's reply or our answer does, who a chat still waits for."""
import pytest

from crm.conversations import lifecycle
from crm.errors import Conflict
from crm.models import Conversation


def conversation(channel="email", status="open", assignee_id=None):
    return Conversation(channel=channel, status=status, assignee_id=assignee_id)


def test_every_status_group_names_only_known_statuses():
    groups = (lifecycle.UNASSIGNED, lifecycle.OPEN, lifecycle.ACTIVE, lifecycle.LIVE_CHAT, lifecycle.HELD_CHAT,
              lifecycle.DONE, lifecycle.FINISHED)
    assert all(set(group) <= set(lifecycle.STATUSES) for group in groups)
    assert not set(lifecycle.OPEN) & set(lifecycle.FINISHED)


@pytest.mark.parametrize("status, movable", [("queued", True), ("assigned", True), ("ended", False), ("closed", False)])
def test_a_chat_moves_only_while_the_resident_may_still_be_there(status, movable):
    assert lifecycle.can_move(conversation("webchat", status)) is movable


@pytest.mark.parametrize("status, movable", [("open", True), ("assigned", True), ("waiting_customer", True),
                                             ("resolved", False), ("closed", False)])
def test_an_email_moves_until_it_is_resolved(status, movable):
    assert lifecycle.can_move(conversation("email", status)) is movable


def test_moving_a_finished_conversation_is_refused():
    with pytest.raises(Conflict):
        lifecycle.check_move(conversation("email", "resolved"))


@pytest.mark.parametrize("status", ["ended", "closed", "resolved"])
def test_a_reply_to_a_resident_who_has_left_the_chat_is_refused(status):
    with pytest.raises(Conflict) as refused:
        lifecycle.check_live_chat(conversation("webchat", status))
    assert refused.value.code == "ended"


@pytest.mark.parametrize("status", ["waiting_customer", "resolved", "closed", "queued"])
def test_a_residents_reply_puts_the_conversation_back_in_front_of_its_agent_or_the_queue(status):
    held, unheld = conversation(status=status, assignee_id=7), conversation(status=status)
    for item in (held, unheld):
        lifecycle.back_in_front(item)
    assert (held.status, unheld.status) == ("assigned", "open")
    assert held.closed_at is None


def test_assigning_an_open_email_marks_it_assigned_and_back_to_the_queue_open():
    item = conversation(status="open")
    lifecycle.assigned(item, 7)
    assert (item.status, item.assignee_id) == ("assigned", 7)
    lifecycle.assigned(item, None)
    assert (item.status, item.assignee_id) == ("open", None)


def test_assigning_a_conversation_waiting_on_the_resident_keeps_it_waiting():
    item = conversation(status="waiting_customer")
    lifecycle.assigned(item, 7)
    assert (item.status, item.assignee_id) == ("waiting_customer", 7)
