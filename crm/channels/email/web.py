"""Console pages of the email channel: inbox per queue, conversation, quarantine review."""
from datetime import timedelta
from email import policy
from email.parser import BytesHeaderParser

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from ... import labels, visibility
from ...audit import audit
from ...auth.access import roles_required
from ...auth.roles import ADMINS, DESK_STAFF_SQL, FRONT_LINE
from ...cases.attachments import THUMBNAIL_TYPES, check_view_attachment, thumbnail, thumbnail_type
from ...cases import lifecycle
from ...cases import service as cases
from ...cases.queries import can_work
from ...conversations import lifecycle as conversation_lifecycle, service as conversations
from ...conversations.access import readable_conversation, visible_conversations
from ...customers.timeline import describe_event, timeline_page
from ...errors import ValidationFailed
from ...extensions import db
from ...models import Attachment, Conversation, InboundEmail, OutboundEmail, Queue, User, utcnow
from ...web import act
from .delivery import retry_send
from .ingest import reprocess
from .forms import OUTCOME_CHOICES, ActionForm, AssignForm, NoteForm, ReplyForm, ResolveForm
from .replying import (
    REPLY_MARKER_SECONDS, canned_replies, clear_replying, fill_placeholders, mark_replying, others_replying,
    placeholder_values, reply_due, reply_target_hours, waiting_since,
)

bp = Blueprint("email", __name__, url_prefix="/email")
VIEWS = {"unassigned": "Unassigned", "mine": "Mine", "waiting": "Waiting on customer"}
# Types a browser may show inline; everything else is downloaded, never rendered.
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
MAX_REPLY_FILES = 5
MAX_REPLY_BYTES = 10 * 1024 * 1024
# Mail that arrives this long after its Date (an imported mailbox, a relay's retries) shows when it was written too:
# the thread is in the order mail was written, and arrival times alone would not say why.
WRITTEN_APART = timedelta(minutes=15)


def _inbox_query(view: str, queue_id, visible):
    query = select(Conversation).where(Conversation.channel == "email", visible)
    if queue_id:
        query = query.where(Conversation.queue_id == queue_id)
    if view == "mine":
        query = query.where(Conversation.assignee_id == current_user.id, Conversation.status.in_(conversation_lifecycle.OPEN))
    elif view == "waiting":
        query = query.where(Conversation.status == "waiting_customer")
    else:
        query = query.where(Conversation.assignee_id.is_(None), Conversation.status.in_(conversation_lifecycle.UNASSIGNED))
    return query


@bp.route("/")
@roles_required(*FRONT_LINE)
def inbox():
    """The email inbox of a queue: unassigned, mine, or waiting on the customer; oldest first."""
    view = request.args.get("view", "unassigned")
    view = view if view in VIEWS else "unassigned"
    queues = db.session.scalars(select(Queue).where(Queue.channel == "email").order_by(Queue.name)).all()
    queue_code = request.args.get("queue", "")
    queue = next((q for q in queues if q.code == queue_code), None)
    visible = visible_conversations(current_user)
    conversations = db.session.scalars(
        _inbox_query(view, queue.id if queue else None, visible)
        .order_by(Conversation.last_message_at.asc().nulls_last(), Conversation.id).limit(200)).all()
    counts = {name: db.session.scalar(select(func.count()).select_from(
        _inbox_query(name, queue.id if queue else None, visible).subquery())) for name in VIEWS}
    since = waiting_since(c.id for c in conversations)
    due = {cid: reply_due(at) for cid, at in since.items()}
    return render_template("email/inbox.html", conversations=conversations, queues=queues, queue=queue,
                           view=view, views=VIEWS, counts=counts, waiting_since=since, due=due, now=utcnow(),
                           target_hours=reply_target_hours())


def _resolve_form(conversation, form=None):
    """Return the resolve form; with a linked case it offers the case's next steps the user may take."""
    form = form or ResolveForm()
    case = conversation.case
    if case is not None:
        # A conversation with a case was not resolved at first contact: the case carries the work on.
        form.outcome.choices = [(v, text) for v, text in OUTCOME_CHOICES if v not in ("", "resolved_first_time")]
        if not form.is_submitted():
            form.outcome.data = "case_raised"
        here = labels.label(case.status, "case_status")
        form.case_status.choices = [("", f"Leave it with {case.service.name} ({here})")]
        if can_work(current_user, case) and not case.merged_into_id:
            form.case_status.choices += [(s, f"Move it to {labels.label(s, 'case_status')}")
                                         for s in lifecycle.allowed_next(case)]
    return form


def _render_conversation(conversation, reply_form=None, note_form=None, resolve_form=None, status=200):
    assign_form = AssignForm()
    staff = db.session.scalars(select(User).where(User.active.is_(True), User.role.in_(DESK_STAFF_SQL))
                               .order_by(User.name)).all()
    assign_form.assignee.choices = [("", "Nobody (back to the queue)")] + [(str(u.id), u.name) for u in staff]
    assign_form.assignee.data = str(conversation.assignee_id or "")
    entries, _ = timeline_page(conversation.customer_id, 15)
    entries = visibility.redact_timeline(current_user, entries)
    inbound = {row.stored_message_id: row for row in db.session.scalars(
        select(InboundEmail).where(InboundEmail.conversation_id == conversation.id))}
    sends = {row.stored_message_id: row for row in db.session.scalars(
        select(OutboundEmail).where(OutboundEmail.conversation_id == conversation.id))}
    values = placeholder_values(conversation, current_user)
    canned = [(c.title, fill_placeholders(c.body, values)) for c in canned_replies(conversation.channel)]
    since = waiting_since([conversation.id]).get(conversation.id)
    written = {m.id: m.sent_at for m in conversation.messages
               if m.direction == "inbound" and m.sent_at is not None and m.created_at - m.sent_at > WRITTEN_APART}
    return render_template(
        "email/conversation.html", conversation=conversation, customer=conversation.customer,
        reply_form=reply_form or ReplyForm(), note_form=note_form or NoteForm(), assign_form=assign_form,
        resolve_form=_resolve_form(conversation, resolve_form), entries=entries, describe_event=describe_event,
        inbound=inbound, sends=sends, written=written, canned=canned, action_form=ActionForm(),
        thumbnail_types=THUMBNAIL_TYPES,
        others_replying=others_replying(conversation, current_user), waiting_since=since, reply_due=reply_due(since),
        now=utcnow(), replying_seconds=REPLY_MARKER_SECONDS,
    ), status


@bp.route("/conversations/<int:conversation_id>")
@roles_required()
def conversation(conversation_id):
    """A conversation: the thread with attachments, the customer's timeline beside it, the reply box."""
    return _render_conversation(readable_conversation(current_user, conversation_id))


def _uploaded_files(form) -> list:
    """Read the files attached to a reply: (name, type, bytes), within the count and size limits."""
    files = []
    for upload in form.attachments.data or []:
        if not getattr(upload, "filename", ""):
            continue
        data = upload.read(MAX_REPLY_BYTES + 1)
        if not data:
            continue
        name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]
        files.append((name, upload.mimetype or "application/octet-stream", data))
    if len(files) > MAX_REPLY_FILES:
        raise ValidationFailed(f"Attach at most {MAX_REPLY_FILES} files", {"attachments": ["too many files"]})
    if sum(len(data) for _, _, data in files) > MAX_REPLY_BYTES:
        raise ValidationFailed(f"Attachments must add up to less than {MAX_REPLY_BYTES // (1024 * 1024)}MB",
                               {"attachments": ["too large"]})
    return files


@bp.route("/conversations/<int:conversation_id>/reply", methods=["POST"])
@roles_required(*FRONT_LINE)
def reply(conversation_id):
    """Send the agent's reply to the resident (with files); "Send and resolve" also closes the conversation."""
    record = readable_conversation(current_user, conversation_id)
    form = ReplyForm()
    and_resolve = "and_resolve" in request.form
    if not form.validate_on_submit():
        flash("The reply was not sent: write something first.", "error")
        return _render_conversation(record, reply_form=form, status=400)
    if and_resolve and record.case is None and not form.outcome.data:
        form.outcome.errors = list(form.outcome.errors) + ["Choose the outcome before you send and resolve"]
        flash("The reply was not sent: choose the outcome to send and resolve.", "error")
        return _render_conversation(record, reply_form=form, status=400)

    def send():
        conversations.reply(record, current_user, form.body.data, attachments=_uploaded_files(form))
        clear_replying(record, current_user)
        if and_resolve:
            conversations.resolve(record, current_user, "case_raised" if record.case else form.outcome.data)

    def refused(error):
        for name, messages in error.fields.items():
            if name in form:
                form[name].errors = list(form[name].errors) + list(messages)
        return _render_conversation(record, reply_form=form, status=error.status)

    if and_resolve:
        return act(send, "Reply queued for sending, and the conversation is resolved.",
                   lambda _: redirect(url_for("email.inbox")), refused)
    return act(send, "Reply queued for sending.",
               lambda _: redirect(url_for("email.conversation", conversation_id=record.id)), refused)


@bp.route("/conversations/<int:conversation_id>/replying", methods=["GET", "POST"])
@roles_required(*FRONT_LINE)
def replying(conversation_id):
    """POST: the user is writing a reply (renews their marker); both answer who else is replying now."""
    record = readable_conversation(current_user, conversation_id)
    if request.method == "POST":
        if request.form.get("done") == "1":
            clear_replying(record, current_user)
        else:
            mark_replying(record, current_user)
        db.session.commit()
    others = others_replying(record, current_user)
    return jsonify({"others": others, "expires_in": REPLY_MARKER_SECONDS})


@bp.route("/conversations/<int:conversation_id>/note", methods=["POST"])
@roles_required()
def note(conversation_id):
    """Add an internal note, which never goes to the resident."""
    record = readable_conversation(current_user, conversation_id)
    form = NoteForm()
    if not form.validate_on_submit():
        flash("Write the note first.", "error")
        return _render_conversation(record, note_form=form, status=400)
    return act(lambda: conversations.note(record, current_user, form.body.data), "Internal note added.",
               lambda _: redirect(url_for("email.conversation", conversation_id=record.id)),
               lambda error: _render_conversation(record, note_form=form, status=error.status))


@bp.route("/conversations/<int:conversation_id>/assign", methods=["POST"])
@roles_required(*FRONT_LINE)
def assign(conversation_id):
    """Give the conversation to someone (or back to the queue)."""
    record = readable_conversation(current_user, conversation_id)
    raw = request.form.get("assignee", "")
    if not ActionForm().validate_on_submit():
        abort(400)
    back = redirect(url_for("email.conversation", conversation_id=record.id))
    if raw and not raw.isdigit():
        flash("Choose a member of staff.", "error")
        return back
    return act(lambda: conversations.assign(current_user, record, int(raw) if raw else None),
               lambda user: f"Assigned to {user.name}." if user else "Back in the queue.",
               lambda _: back, lambda _: back)


@bp.route("/conversations/<int:conversation_id>/resolve", methods=["POST"])
@roles_required(*FRONT_LINE)
def resolve(conversation_id):
    """Resolve the conversation: with a linked case, take the case's next step; else record the outcome."""
    record = readable_conversation(current_user, conversation_id)
    form = _resolve_form(record, ResolveForm())
    if not form.validate_on_submit():
        flash("Nothing was changed: check the form.", "error")
        return _render_conversation(record, resolve_form=form, status=400)
    case = record.case
    offered = {value for value, _ in form.outcome.choices if value}
    if form.outcome.data not in offered:
        form.outcome.errors = list(form.outcome.errors) + ["Choose the outcome"]
        flash("Choose the outcome.", "error")
        return _render_conversation(record, resolve_form=form, status=400)
    step = form.case_status.data if case is not None else ""
    if step and step not in dict(form.case_status.choices):
        form.case_status.errors = list(form.case_status.errors) + ["Choose one of the steps offered"]
        return _render_conversation(record, resolve_form=form, status=400)
    if step == "resolved" and not (form.case_reason.data or "").strip():
        form.case_reason.errors = list(form.case_reason.errors) + ["Say how the case was resolved"]
        flash("Say how the case was resolved: the resident is told.", "error")
        return _render_conversation(record, resolve_form=form, status=400)

    def resolve_and_step():
        conversations.resolve(record, current_user, form.outcome.data)
        if case is not None and (form.case_note.data or "").strip():
            cases.add_note(case, form.case_note.data, current_user)
        if step:
            cases.change_status(case, step, current_user, reason=(form.case_reason.data or "").strip() or None)
        clear_replying(record, current_user)

    done = "Conversation resolved."
    if step:
        done += f" Case {case.reference} is now {labels.label(step, 'case_status').lower()}."
    elif case is not None:
        done += f" Case {case.reference} stays with {case.service.name}."
    return act(resolve_and_step, done, lambda _: redirect(url_for("email.inbox")),
               lambda error: _render_conversation(record, resolve_form=form, status=error.status))


@bp.route("/outbound/<int:outbound_id>/retry", methods=["POST"])
@roles_required(*FRONT_LINE)
def retry(outbound_id):
    """Queue a failed email again."""
    send = db.get_or_404(OutboundEmail, outbound_id)
    visibility.check_conversation(current_user, send.conversation)
    if not ActionForm().validate_on_submit():
        abort(400)
    back = redirect(url_for("email.conversation", conversation_id=send.conversation_id))
    return act(lambda: retry_send(send), "Sending again.", lambda _: back, lambda _: back)


def _attachment_or_404(attachment_id: int) -> Attachment:
    """Return the attachment if it exists and the signed-in user may read what it belongs to."""
    item = db.get_or_404(Attachment, attachment_id)
    check_view_attachment(current_user, item)
    return item


@bp.route("/attachments/<int:attachment_id>")
@roles_required()
def attachment(attachment_id):
    """Serve a stored attachment: images and PDFs inline (or as a download when asked), everything else downloaded."""
    item = _attachment_or_404(attachment_id)
    inline = item.content_type in INLINE_TYPES and request.args.get("download") != "1"
    from ...security import content_disposition

    response = Response(item.data, mimetype=item.content_type if item.content_type in INLINE_TYPES
                        else "application/octet-stream")
    # Any stored name (rows from before names were cleaned included) makes a valid header.
    response.headers["Content-Disposition"] = content_disposition("inline" if inline else "attachment", item.filename)
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.route("/attachments/<int:attachment_id>/thumbnail")
@roles_required()
def attachment_thumbnail(attachment_id):
    """Serve a small preview of an image attachment (404 when it is not an image we can read)."""
    item = _attachment_or_404(attachment_id)
    small = thumbnail(item)
    if small is None:
        abort(404)
    response = Response(small, mimetype=thumbnail_type(small))
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.route("/quarantine")
@roles_required(*ADMINS)
def quarantine():
    """Messages the pipeline could not understand (and any never processed), for review."""
    rows = db.session.scalars(select(InboundEmail).where(InboundEmail.status.in_(("quarantined", "received")))
                              .order_by(InboundEmail.received_at.desc()).limit(200)).all()
    return render_template("email/quarantine.html", rows=rows, form=ActionForm())


@bp.route("/quarantine/<int:inbound_id>")
@roles_required(*ADMINS)
def quarantined_message(inbound_id):
    """One stored message: its reason, headers and the start of its raw text."""
    row = db.get_or_404(InboundEmail, inbound_id)
    try:
        headers = list(BytesHeaderParser(policy=policy.compat32).parsebytes(row.raw).items())
    except Exception:  # noqa: BLE001 - a reviewer still gets the raw text below
        headers = []
    preview = row.raw[:20000].decode("utf-8", errors="replace")
    audit(current_user, "inbound_email.view", "inbound_email", row.id)
    return render_template("email/quarantined_message.html", row=row, headers=headers, preview=preview,
                           form=ActionForm())


@bp.route("/quarantine/<int:inbound_id>/raw")
@roles_required(*ADMINS)
def raw_message(inbound_id):
    """Download a stored message exactly as it arrived."""
    row = db.get_or_404(InboundEmail, inbound_id)
    response = Response(row.raw, mimetype="message/rfc822")
    response.headers["Content-Disposition"] = f'attachment; filename="inbound-{row.id}.eml"'
    return response


@bp.route("/quarantine/<int:inbound_id>/reprocess", methods=["POST"])
@roles_required(*ADMINS)
def reprocess_message(inbound_id):
    """Run a quarantined message through the pipeline again (after a fix, or a config change)."""
    row = db.get_or_404(InboundEmail, inbound_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    audit(current_user, "inbound_email.reprocess", "inbound_email", row.id)
    back = redirect(url_for("email.quarantine"))

    def answer(result):
        if result.status == "quarantined":
            flash(f"Still quarantined: {result.reason}", "error")
        return back

    return act(lambda: reprocess(row),
               lambda result: None if result.status == "quarantined" else
               f"Message {row.id} {result.status.replace('_', ' ')}.", answer, lambda _: back)
