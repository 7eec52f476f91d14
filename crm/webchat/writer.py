"""Chat messages stored in groups: one writer greenlet per process commits every message queued at that moment.

A `message` or `note` handler hands its message to `submit` and waits, holding no connection.
The writer takes everything queued, stores it in one transaction (messages.store_messages),
commits, and only then wakes each handler, which relays and acks: stored before acknowledged.
While one batch is being stored the next gathers, so a busy process commits a few times a
second for hundreds of messages instead of once per message.

What a batch does not store goes the old way, one message on its own (messages.store_once,
which stores it, returns the stored duplicate or says why): a refused sender, a chat that
ended, a batch that failed, and a chat whose row another transaction holds locked (the batch
skips it rather than make every chat wait). Until such a detour is done, the batches send that
chat's later messages the same way, so they queue behind it and keep their order.
"""
import logging
from collections import deque
from typing import Callable, Optional

from ..extensions import db, socketio
from ..signals import message_stored
from . import messages
from .rules import CHANNEL

log = logging.getLogger("crm.webchat")

MESSAGE_BATCH = 500
_wanted = None  # the writer's wake-up Event (of the server's async mode)
_queued: deque = deque()  # [request, done Event, outcome, turn Event when stored alone]
_detours: dict[int, deque] = {}  # chat id -> turns of its messages to be stored on their own, in sent order


def start(app) -> None:
    """Start this process's writer (once, with the sweeper on the first Socket.IO connection)."""
    global _wanted
    if _wanted is None:
        _wanted = socketio.server.eio.create_event()
        socketio.start_background_task(_write_forever, app)


def store(request: messages.MessageRequest, alone: Callable[[], tuple]) -> tuple[dict, Optional[int]]:
    """Store a message with the others of the moment; return (its wire form, the holding agent's id) once committed.

    `alone()` stores it on its own, or raises why not, when the batch did not store it.
    """
    if _wanted is None:
        return alone()
    _, _, stored, turn = _submit(request)
    if stored is not None:
        return stored
    turn.wait()  # the chat's earlier messages stored alone go first, or the lock's queue could reorder them
    try:
        return alone()
    finally:
        turns = _detours[request.conversation_id]
        turns.popleft()
        if turns:
            turns[0].set()
        else:
            del _detours[request.conversation_id]


def _submit(request: messages.MessageRequest) -> list:
    item = [request, socketio.server.eio.create_event(), None, None]
    _queued.append(item)
    _wanted.set()
    item[1].wait()
    return item


def _write_forever(app) -> None:
    while True:
        _wanted.wait()
        _wanted.clear()
        while _queued:
            batch = [_queued.popleft() for _ in range(min(len(_queued), MESSAGE_BATCH))]
            with app.app_context():
                try:
                    _write(batch)
                except Exception:  # noqa: BLE001 - the writer must outlive one bad batch
                    log.exception("webchat message writer failed a batch of %d", len(batch))
                finally:
                    db.session.remove()
                    for item in batch:
                        if item[2] is None:  # its handler stores it alone, in its turn; the chat's next follow it
                            item[3] = _take_turn(item[0].conversation_id)
                        item[1].set()


def _take_turn(chat_id: int):
    """Queue a turn to store a message of this chat alone; the first in the queue may go at once."""
    turn = socketio.server.eio.create_event()
    turns = _detours.setdefault(chat_id, deque())
    if not turns:
        turn.set()
    turns.append(turn)
    return turn


def _write(batch) -> None:
    """Store and commit one batch, then record each outcome; on failure every outcome stays None."""
    batch = [item for item in batch if item[0].conversation_id not in _detours]  # the rest queue behind
    if not batch:
        return
    try:
        outcomes = messages.store_messages([item[0] for item in batch])
        db.session.commit()
    except Exception:  # noqa: BLE001 - each handler then stores its own message on its own
        db.session.rollback()
        log.exception("batched webchat messages failed; storing the %d one by one", len(batch))
        return
    for item, outcome in zip(batch, outcomes):
        if outcome is None:
            continue
        data, holder_id, new = outcome
        if new:
            # source="webchat": our own handlers deliver these; the receiver delivers everyone else's.
            message_stored.send(None, message_id=data["id"], conversation_id=item[0].conversation_id,
                                channel=CHANNEL, author=data["author"], internal=bool(data.get("internal")),
                                source=CHANNEL)
        item[2] = (data, holder_id)
