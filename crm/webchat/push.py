"""What the server pushes: deliveries after commit, the assigner and the queue sweeper.

Assignment runs in passes, one at a time per process: the starter runs one right after each
batch of starts it stored, and the assigner is woken when an agent may take a chat (connect,
available, close, transfer) and every WEBCHAT_SWEEP_SECONDS. A pass assigns every chat it can in
one transaction under the assignment lock, so a burst of arrivals costs a handful of passes, not
one attempt (and a dozen round trips) per arrival, and handlers never wait for assignment. The
database stays the only queue: passes in several processes take turns on the PostgreSQL
advisory lock.

Rooms: a resident's sockets join `conv:<id>` on /webchat; an agent's sockets join
`user:<id>` and `agents` on /agent. With REDIS_URL these emits travel through Redis to
whichever process holds the socket. (/supervisor `stats` belong to crm.supervisor.push,
which notices queue changes from committed conversation and presence rows.)
"""
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from typing import Optional


from .. import visibility
from ..extensions import db, socketio
from ..models import Conversation, Message, utcnow
from ..signals import message_stored
from . import assignment, chats, hours, messages, rules, writer

log = logging.getLogger("crm.webchat")

RESIDENT_NS, AGENT_NS = "/webchat", "/agent"
SERVER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

# This process's live agent sockets (sid -> user id): heartbeated so other processes know they live.
local_agent_sids: dict[str, int] = {}
_sweeper_started = False
_queue_dirty = True
_assign_wanted = None  # the assigner's wake-up Event (of the server's async mode)
# Chats started in this process whose resident has had no status yet: the assigner's next
# pass tells each one "assigned" or where it waits.
_untold: set[int] = set()


def conv_room(conversation_id: int) -> str:
    return f"conv:{conversation_id}"


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def mark_queue_changed() -> None:
    """Ask the sweeper to push queue positions and the waiting list on its next turn."""
    global _queue_dirty
    _queue_dirty = True


def request_assignment() -> None:
    """Wake this process's assigner: a chat may be waiting for an agent who can now take it."""
    if _assign_wanted is not None:
        _assign_wanted.set()


def chat_arrived(conversation_id: int) -> None:
    """A resident started a chat here: assign it soon and tell them where it stands."""
    _untold.add(conversation_id)
    mark_queue_changed()
    request_assignment()


# ---- deliveries ----------------------------------------------------------------------------

def deliver(message, conversation_id: int, holder_id: Optional[int], skip_sid=None) -> None:
    """Send a stored message (a Message or its wire form) to the resident, unless internal, and to the agent."""
    data = message if isinstance(message, dict) else messages.serialise_message(message)
    if not data.get("internal"):
        socketio.emit("message", data, namespace=RESIDENT_NS, to=conv_room(conversation_id), skip_sid=skip_sid)
    if holder_id:
        socketio.emit("message", dict(data, conversation_id=conversation_id), namespace=AGENT_NS,
                      to=user_room(holder_id), skip_sid=skip_sid)


def status_of(conversation: Conversation, position: Optional[int] = None, outlook=None) -> dict:
    """Return the resident's view of where their chat stands (outlook: assignment.queue_outlook())."""
    state = {"queued": "queued", "assigned": "assigned"}.get(conversation.status, "ended")
    if conversation.chat and conversation.chat.offline_reference:
        state = "offline"
    # as_of orders statuses: one computed before a change may be sent after it; clients drop it.
    status = {"state": state, "conversation_id": conversation.id, "as_of": conversation.updated_at.isoformat()}
    if state == "queued":
        if position is None:
            position = assignment.queue_position(conversation)
        seconds_per_place, open_now = outlook or assignment.queue_outlook()
        status["position"] = position
        status["estimated_wait_seconds"] = int((position or 1) * seconds_per_place)
        status["offline_offer"] = bool(conversation.chat.offline_offered_at) or not open_now
    elif state == "assigned" and conversation.assignee:
        status["agent_name"] = conversation.assignee.name
    elif state == "offline":
        status["reference"] = conversation.chat.offline_reference
    return status


def push_status(conversation: Conversation, position: Optional[int] = None, outlook=None) -> None:
    """Tell the resident's sockets where their chat stands."""
    socketio.emit("status", status_of(conversation, position, outlook), namespace=RESIDENT_NS,
                  to=conv_room(conversation.id))


def chat_summary(conversation: Conversation, for_everyone: bool = False) -> dict:
    """Return what an agent's console shows about a chat (for_everyone: as the shared queue shows it)."""
    chat = conversation.chat
    summary = {
        "conversation_id": conversation.id, "status": conversation.status, "topic": conversation.topic,
        "customer_id": conversation.customer_id, "customer_name": conversation.customer.name,
        "name": chat.name, "email": chat.email, "phone": chat.phone,
        "queued_at": chat.queued_at.isoformat(), "priority": chat.priority,
        "queue": conversation.queue.code if conversation.queue else None,
        "case_reference": conversation.case.reference if conversation.case else None,
        "assignee_id": conversation.assignee_id,
    }
    return visibility.redact_chat_summary(conversation, summary) if for_everyone else summary


def queue_items(waiting=None) -> list[dict]:
    """Return the waiting list as agents' consoles show it (related rows loaded in bulk)."""
    waiting = assignment.waiting_chats() if waiting is None else waiting
    related = chats.load_related(waiting)  # noqa: F841 - keeps them in the identity map
    return [chat_summary(c, for_everyone=True) for c in waiting]


def assigned_news(conversations) -> list[tuple[int, dict, dict]]:
    """Return (agent id, `assigned` payload, resident status) per newly assigned chat, in a few queries.

    Built before the commit that makes the assignment durable: after it every attribute
    read would re-load its row.
    """
    related = chats.load_related(conversations)  # noqa: F841 - keeps them in the identity map
    by_chat = messages.messages_of([c.id for c in conversations])
    news = []
    for conversation in conversations:
        data = chat_summary(conversation)
        data["messages"] = [messages.serialise_message(m) for m in by_chat[conversation.id]]
        news.append((conversation.assignee_id, data, status_of(conversation)))
    return news


def tell_assigned(news) -> None:
    """Emit what assigned_news() built: the chat to its agent, the agent's name to the resident."""
    for agent_id, data, status in news:
        socketio.emit("assigned", data, namespace=AGENT_NS, to=user_room(agent_id))
        socketio.emit("status", status, namespace=RESIDENT_NS, to=conv_room(data["conversation_id"]))


def push_assigned(conversation: Conversation, reason: Optional[str] = None) -> None:
    """Tell the agent they have a chat (with its history; reason: "transferred", "moved") and the resident who it is."""
    news = assigned_news([conversation])
    for _agent_id, data, _status in news:
        if reason:
            data["reason"] = reason
    tell_assigned(news)


def push_unassigned(conversation_id: int, user_id: int, reason: str) -> None:
    """Tell an agent a chat left them (requeued, transferred, closed elsewhere)."""
    socketio.emit("unassigned", {"conversation_id": conversation_id, "reason": reason},
                  namespace=AGENT_NS, to=user_room(user_id))


def after_chat_changed(conversation: Conversation, wrote: int, holder_id: Optional[int] = None,
                       to_agent: bool = False, agent_freed: bool = True) -> None:
    """After a transfer, close or end is committed: deliver the system messages it wrote, then the news.

    wrote: how many of the chat's last messages the change may have written (0: none, nothing for the
    resident); holder_id: a console that gets them too; to_agent: the chat went to an agent, who gets it
    with its history; otherwise the resident gets the chat's status and the queue is redrawn, and
    assigned again if the change freed an agent's place.
    """
    if wrote:
        for message in messages.messages_after(conversation.id, conversation.last_seq - wrote):
            if message.author == "system":
                deliver(message, conversation.id, holder_id)
        if to_agent:
            push_assigned(conversation, reason="transferred")
            return
        push_status(conversation)
    mark_queue_changed()
    if agent_freed:
        request_assignment()


def push_queue() -> None:
    """Send the waiting list to all agents and each waiting resident their position."""
    waiting = assignment.waiting_chats()
    items = queue_items(waiting)
    outlook = assignment.queue_outlook() if waiting else None
    statuses = [status_of(c, position, outlook) for position, c in enumerate(waiting, start=1)]
    db.session.commit()  # ends the read; emits may switch greenlets for a while
    socketio.emit("queue", {"items": items}, namespace=AGENT_NS, to="agents")
    for status in statuses:
        socketio.emit("status", status, namespace=RESIDENT_NS, to=conv_room(status["conversation_id"]))


def run_assignment() -> list[Conversation]:
    """One assigner pass: assign what can be assigned, commit, then tell agents and residents.

    Also tells each chat started here since the last pass where it stands, if still waiting.
    """
    untold = set(_untold)  # committed before this pass reads the queue, so the pass sees them
    result = assignment.assign_waiting(wait=True)
    news = assigned_news(result.made) if result.made else []
    statuses = []
    waiting_ids = [c.id for c in result.waiting]
    if untold & set(waiting_ids):
        outlook = assignment.queue_outlook()
        statuses = [status_of(c, position, outlook) for position, c in enumerate(result.waiting, start=1)
                    if c.id in untold]
    db.session.commit()
    _untold.difference_update(untold)  # told now, or assigned or ended by someone else meanwhile
    tell_assigned(news)
    for status in statuses:
        socketio.emit("status", status, namespace=RESIDENT_NS, to=conv_room(status["conversation_id"]))
    if result.made:
        mark_queue_changed()
    return result.made


# ---- the sweeper -------------------------------------------------------------------------------

def ensure_sweeper(app) -> None:
    """Start this process's sweeper, assigner and starter once (on its first Socket.IO connection)."""
    global _sweeper_started, _assign_wanted, _start_wanted
    if not _sweeper_started:
        _sweeper_started = True
        _assign_wanted = socketio.server.eio.create_event()
        _start_wanted = socketio.server.eio.create_event()
        socketio.start_background_task(_sweep_forever, app)
        socketio.start_background_task(_assign_forever, app)
        socketio.start_background_task(_start_forever, app)
        writer.start(app)
        from .. import realtime

        realtime.resubscribed.append(lambda: resync_local_clients(app))


# ---- the starter: `start`s stored in batches ------------------------------------------------------

_start_wanted = None  # the starter's wake-up Event
_starts: deque = deque()  # [request, done Event, outcome]
_starting: list = []  # the size of the batch being stored, while one is
_handed_over = 0  # starts handed to the starter so far
_settled = 0  # of those, how many it has stored (or refused) and answered
_assigning: list = []  # non-empty while an assignment pass runs
_one_pass = threading.Lock()  # green under the server's monkey patching
START_BATCH = 500


def submit_start(request: "chats.StartRequest"):
    """Have this process's starter store a chat; wait (holding no connection) and return its ack fields.

    Returns None when webchat is closed (the caller takes the leave-a-message path); raises the
    DomainError that refused it. A burst of starts is stored in a few transactions, not one each.
    """
    global _handed_over
    item = [request, socketio.server.eio.create_event(), None]
    _handed_over += 1
    _starts.append(item)
    _start_wanted.set()
    item[1].wait()
    if isinstance(item[2], Exception):
        raise item[2]
    return item[2]


def _start_forever(app) -> None:
    global _settled
    while True:
        _start_wanted.wait()
        _start_wanted.clear()
        while _starts:
            batch = [_starts.popleft() for _ in range(min(len(_starts), START_BATCH))]
            _starting.append(len(batch))
            stored = []
            with app.app_context():
                try:
                    stored = _start_batch(batch)
                finally:
                    db.session.remove()
                    _starting.clear()
                    _settled += len(batch)
                    for item in batch:
                        item[1].set()
            if stored:
                # Assigned at once, after waking the handlers (each ack goes out before the news of its chat):
                # a stream of arrivals is given out as it comes, a few at a time, not in clumps.
                _untold.update(stored)
                mark_queue_changed()
                _assign_pass(app)


def _start_batch(batch) -> list[int]:
    """Store a batch of starts in one transaction (if it fails, each on its own); return the chats stored.

    Each resident's socket joins its chat's room before the commit, so nothing said about the
    chat after it (the assigner's `status`, an agent's first words) can miss them.
    """
    joined = []
    try:
        if not hours.is_open():
            db.session.rollback()
            return []  # outcome None: the handlers take the closed path themselves
        outcomes = chats.start_chats([item[0] for item in batch])
        for item, outcome in zip(batch, outcomes):
            if isinstance(outcome, dict):
                joined.append(_join(item[0].sid, outcome["conversation_id"]))
        db.session.commit()
    except Exception:  # noqa: BLE001 - one bad start must not refuse the others: retried one by one
        db.session.rollback()
        _leave(joined)
        log.exception("batched webchat start failed; storing the %d starts one by one", len(batch))
        outcomes = []
        for item in batch:
            request = item[0]
            joined = []
            try:
                conversation = chats.start_chat(request.payload, request.visitor_id, request.ip)
                outcome = {"conversation_id": conversation.id, "token": conversation.token}
                joined.append(_join(request.sid, conversation.id))
                db.session.commit()
            except Exception as error:  # noqa: BLE001 - handed to its handler, which answers it
                db.session.rollback()
                _leave(joined)
                outcome = error
            outcomes.append(outcome)
    for item, outcome in zip(batch, outcomes):
        item[2] = outcome
    return [outcome["conversation_id"] for outcome in outcomes if isinstance(outcome, dict)]


def _join(sid, conversation_id: int):
    if sid is not None:
        socketio.server.enter_room(sid, conv_room(conversation_id), namespace=RESIDENT_NS)
    return sid, conversation_id


def _leave(joined) -> None:
    for sid, conversation_id in joined:
        if sid is not None:
            socketio.server.leave_room(sid, conv_room(conversation_id), namespace=RESIDENT_NS)


def _let_starts_go_first() -> None:
    """Wait until the starts handed over so far are stored: their acks come before the pass that assigns them.

    Only those: starts arriving meanwhile wait for the next pass, so a steady stream of arrivals is
    assigned as it comes, not held back and given out in one clump.
    """
    due = _handed_over
    for _ in range(200):  # at most ~2 s
        if _settled >= due:
            return
        socketio.sleep(0.005)


def _assign_forever(app) -> None:
    """The assigner: one pass when woken (after a short gathering delay) or every sweep interval."""
    while True:
        if _assign_wanted.wait(app.config["WEBCHAT_SWEEP_SECONDS"]):
            # Let the rest of a burst of arrivals commit, so one pass serves them all.
            socketio.sleep(app.config["WEBCHAT_ASSIGN_GATHER_SECONDS"])
        _let_starts_go_first()
        _assign_wanted.clear()
        _assign_pass(app)


def _assign_pass(app) -> None:
    """Run one assignment pass; the starter's and the assigner's passes take turns."""
    with _one_pass:
        _assigning.append(True)
        with app.app_context():
            try:
                run_assignment()
            except Exception:  # noqa: BLE001 - the assigner must outlive one bad pass
                db.session.rollback()
                log.exception("webchat assignment pass failed")
            finally:
                _assigning.clear()
                db.session.remove()


def _sweep_forever(app) -> None:
    last_beat = last_broadcast = 0.0
    while True:
        socketio.sleep(app.config["WEBCHAT_SWEEP_SECONDS"])
        with app.app_context():
            try:
                now_mono = time.monotonic()
                if now_mono - last_beat >= app.config["WEBCHAT_HEARTBEAT_SECONDS"]:
                    assignment.heartbeat(local_agent_sids)
                    db.session.commit()
                    last_beat = now_mono
                sweep_once()
                # Not while starts are stored or a pass is due: positions would be stale at once.
                busy = _starts or _starting or _assigning or (_assign_wanted is not None and _assign_wanted.is_set())
                if (_queue_dirty and not busy) or now_mono - last_broadcast >= 15:
                    _broadcast_queue()
                    last_broadcast = now_mono
            except Exception:  # noqa: BLE001 - the sweeper must outlive one bad turn
                db.session.rollback()
                log.exception("webchat sweeper turn failed")
            finally:
                db.session.remove()


def _broadcast_queue() -> None:
    global _queue_dirty
    _queue_dirty = False
    push_queue()


def sweep_once() -> None:
    """One turn: expire dead sockets, requeue absent agents' chats, offer leave-a-message, assign."""
    now = utcnow()
    assignment.expire_dead_sockets(now)
    moved = assignment.requeue_from_absent_agents(now)
    offered = assignment.offer_offline(now)
    notes = [(conversation.id, old_agent, messages.serialise_message(note)) for conversation, old_agent, note in moved]
    db.session.commit()
    for conversation_id, old_agent, note in notes:
        push_unassigned(conversation_id, old_agent, "requeued")
        deliver(note, conversation_id, None)  # "your adviser had to leave", live
        mark_queue_changed()
    for conversation in offered:
        push_status(conversation)
    if moved:
        request_assignment()


# ---- after a Redis outage ------------------------------------------------------------------------

def resync_local_clients(app) -> None:
    """Re-send this process's clients what they may have missed from other processes while Redis was away.

    Consoles get each chat their agent holds again (with its messages; they show each once) and
    a `resync` to drop chats that left them; residents get their chat's status and its latest
    message, whose seq makes a widget that missed some fetch them with `resume`.
    """
    from .resident_events import residents  # noqa: PLC0415  (resident_events imports this module)

    with app.app_context():
        try:
            agent_sids = dict(local_agent_sids)
            resident_sids = {sid: conn.conversation_id for sid, conn in list(residents.items()) if conn.conversation_id}
            held = chats.held_chats(set(agent_sids.values()))
            news = assigned_news(held) if held else []
            live = {c.id: c for c in chats.chats_by_id(set(resident_sids.values()))}
            statuses = {cid: status_of(c) for cid, c in live.items()}
            latest = messages.latest_messages(list(live))
            items = queue_items()
            db.session.commit()
        except Exception:  # noqa: BLE001 - clients still resume on their next reconnect
            db.session.rollback()
            log.exception("webchat resync after a Redis outage failed")
            return
        finally:
            db.session.remove()
    by_agent = {}
    for agent_id, data, _status in news:
        by_agent.setdefault(agent_id, []).append(data)
    for sid, user_id in agent_sids.items():
        for data in by_agent.get(user_id, []):
            socketio.emit("assigned", data, namespace=AGENT_NS, to=sid, ignore_queue=True)
        socketio.emit("queue", {"items": items}, namespace=AGENT_NS, to=sid, ignore_queue=True)
        socketio.emit("resync", {}, namespace=AGENT_NS, to=sid, ignore_queue=True)
    for sid, conversation_id in resident_sids.items():
        if conversation_id in statuses:
            socketio.emit("status", statuses[conversation_id], namespace=RESIDENT_NS, to=sid, ignore_queue=True)
        if conversation_id in latest:
            socketio.emit("message", latest[conversation_id], namespace=RESIDENT_NS, to=sid, ignore_queue=True)


# ---- messages stored elsewhere (the REST reply endpoint) -------------------------------------------

@message_stored.connect
def deliver_stored_elsewhere(sender, **payload):
    """Deliver to the resident a chat message another area stored (e.g. POST /conversations/{id}/reply).

    It runs after the commit, where no SQL may run: a sender that gives `wire` (serialise_message,
    taken before the commit) and `holder_id` is delivered from those; otherwise the message must
    still be in the session's identity map.
    """
    if payload.get("source") == rules.CHANNEL:
        return  # our own handlers deliver their messages
    message_id = payload.get("message_id")
    if message_id is None:
        return
    try:
        if payload.get("wire") is not None and payload.get("channel") == rules.CHANNEL:
            deliver(payload["wire"], payload["conversation_id"], payload.get("holder_id"))
            return
        message = db.session.get(Message, message_id)
        if message is None or message.conversation.channel != rules.CHANNEL:
            return
        deliver(message, message.conversation_id, message.conversation.assignee_id)
    except Exception:  # noqa: BLE001 - a failed push must not fail the request that stored it
        log.exception("could not deliver stored message %s to webchat", message_id)



def follow_supervisor_move(sender=None, conversation_id=None, from_agent_id=None, to_agent_id=None, **_):
    """A supervisor moved a chat or an email: tell the agents and the resident, off the committing request.

    The signal fires inside the session's after_commit, where no SQL may run, so the news is
    read and pushed by a background task with a session of its own.
    """
    from flask import current_app, has_app_context

    if not conversation_id or not has_app_context():
        return
    app = current_app._get_current_object()
    # A test app has no server to push through (as crm.supervisor.push decides).
    if app.testing and not app.config.get("WEBCHAT_PUSH"):
        return
    socketio.start_background_task(_push_move, app, conversation_id, from_agent_id, to_agent_id)


def _push_move(app, conversation_id: int, from_agent_id: Optional[int], to_agent_id: Optional[int]) -> None:
    """Push a committed move: the chat leaves one console and opens on the other; the resident hears."""
    with app.app_context():
        try:
            conversation = db.session.get(Conversation, conversation_id)
            if conversation is None:
                return
            if from_agent_id and from_agent_id != to_agent_id:
                push_unassigned(conversation.id, from_agent_id, "moved by a supervisor")
            if conversation.channel != rules.CHANNEL:
                if to_agent_id and to_agent_id != from_agent_id:
                    socketio.emit("work_assigned", {"conversation_id": conversation.id, "channel": conversation.channel,
                                                    "subject": conversation.subject or ""},
                                  namespace=AGENT_NS, to=user_room(to_agent_id))
                return
            if to_agent_id:
                news = assigned_news([conversation])
                for _agent_id, data, _status in news:
                    data["reason"] = "moved"
                db.session.commit()
                tell_assigned(news)
                mark_queue_changed()
            else:
                status = status_of(conversation)
                db.session.commit()
                socketio.emit("status", status, namespace=RESIDENT_NS, to=conv_room(conversation.id))
                mark_queue_changed()
                request_assignment()
        except Exception:  # noqa: BLE001 - the move is committed; a failed push must not undo or hide it
            db.session.rollback()
            log.exception("could not push the move of conversation %s", conversation_id)
        finally:
            db.session.remove()


def follow_banner(sender=None, **_):
    """A supervisor posted or took down a banner: send the banners in force to every open console."""
    from flask import current_app, has_app_context

    if not has_app_context():
        return
    app = current_app._get_current_object()
    if app.testing and not app.config.get("WEBCHAT_PUSH"):
        return
    socketio.start_background_task(_push_banners, app)


def _push_banners(app) -> None:
    with app.app_context():
        try:
            from ..supervisor.figures import active_banners, current_time

            banners = [{"id": b.id, "message": b.message} for b in active_banners(current_time())]
            db.session.commit()
        except Exception:  # noqa: BLE001 - consoles still show banners on their next page load
            db.session.rollback()
            log.exception("could not push banners")
            return
        finally:
            db.session.remove()
    socketio.emit("banners", {"items": banners}, namespace=AGENT_NS, to="agents")


def connect_signals() -> None:
    """Listen to other areas' news that webchat clients must hear."""
    from ..conversations.service import conversation_moved

    conversation_moved.connect(follow_supervisor_move)
    try:
        from ..supervisor.actions import banner_changed
    except ImportError:  # the supervisor area is optional
        return
    banner_changed.connect(follow_banner)
