"""Console pages of the email channel: inbox per queue, conversation, quarantine review."""
from email import policy
from email.parser import BytesHeaderParser

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from ..audit import audit
from .. import visibility
from ..auth.access import roles_required
from ..auth.roles import FRONT_LINE
from ..cases.queries import check_view
from ..channels.email import reprocess, reply_to_conversation, resolve_conversation, retry_send
from ..customers.timeline import describe_event, timeline_page
from ..errors import DomainError
from ..extensions import db
from ..models import (
    Attachment, CannedReply, Case, Conversation, InboundEmail, OutboundEmail, Queue, User,
)
from . import bp
from .access import check_view_conversation, visible_conversations
from .forms import ActionForm, AssignForm, NoteForm, ReplyForm, ResolveForm

WORKERS = FRONT_LINE
VIEWS = {"unassigned": "Unassigned", "mine": "Mine", "waiting": "Waiting on customer"}
OPEN_STATES = ("open", "queued", "assigned", "waiting_customer")
# Types a browser may show inline; everything else is downloaded, never rendered.
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}


def _inbox_query(view: str, queue_id, visible):
    query = select(Conversation).where(Conversation.channel == "email", visible)
    if queue_id:
        query = query.where(Conversation.queue_id == queue_id)
    if view == "mine":
        query = query.where(Conversation.assignee_id == current_user.id, Conversation.status.in_(OPEN_STATES))
    elif view == "waiting":
        query = query.where(Conversation.status == "waiting_customer")
    else:
        query = query.where(Conversation.assignee_id.is_(None), Conversation.status.in_(("open", "queued")))
    return query


@bp.route("/")
@roles_required(*WORKERS)
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
    return render_template("email/inbox.html", conversations=conversations, queues=queues, queue=queue,
                           view=view, views=VIEWS, counts=counts)


def _conversation_or_404(conversation_id: int) -> Conversation:
    """Return the conversation if it exists and the signed-in user may read it (404 / 403)."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        abort(404)
    check_view_conversation(current_user, conversation)
    return conversation


def _render_conversation(conversation, reply_form=None, note_form=None, status=200):
    assign_form = AssignForm()
    staff = db.session.scalars(select(User).where(User.active.is_(True), User.role.in_(WORKERS))
                               .order_by(User.name)).all()
    assign_form.assignee.choices = [("", "Nobody (back to the queue)")] + [(str(u.id), u.name) for u in staff]
    assign_form.assignee.data = str(conversation.assignee_id or "")
    entries, _ = timeline_page(conversation.customer_id, 15)
    entries = visibility.redact_timeline(current_user, entries)
    inbound = {row.stored_message_id: row for row in db.session.scalars(
        select(InboundEmail).where(InboundEmail.conversation_id == conversation.id))}
    sends = {row.stored_message_id: row for row in db.session.scalars(
        select(OutboundEmail).where(OutboundEmail.conversation_id == conversation.id))}
    canned = db.session.scalars(select(CannedReply).order_by(CannedReply.title)).all()
    return render_template(
        "email/conversation.html", conversation=conversation, customer=conversation.customer,
        reply_form=reply_form or ReplyForm(), note_form=note_form or NoteForm(), assign_form=assign_form,
        resolve_form=ResolveForm(), entries=entries, describe_event=describe_event, inbound=inbound,
        sends=sends, canned=canned, action_form=ActionForm(),
    ), status


@bp.route("/conversations/<int:conversation_id>")
@roles_required()
def conversation(conversation_id):
    """A conversation: the thread with attachments, the customer's timeline beside it, the reply box."""
    record = _conversation_or_404(conversation_id)
    db.session.commit()  # the audit entry of a sensitive read
    return _render_conversation(record)


@bp.route("/conversations/<int:conversation_id>/reply", methods=["POST"])
@roles_required(*WORKERS)
def reply(conversation_id):
    """Send the agent's reply to the resident."""
    record = _conversation_or_404(conversation_id)
    form = ReplyForm()
    if not form.validate_on_submit():
        flash("The reply was not sent: write something first.", "error")
        return _render_conversation(record, reply_form=form, status=400)
    try:
        reply_to_conversation(record, current_user, form.body.data)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return _render_conversation(record, reply_form=form, status=error.status)
    flash("Reply queued for sending.", "success")
    return redirect(url_for("email.conversation", conversation_id=record.id))


@bp.route("/conversations/<int:conversation_id>/note", methods=["POST"])
@roles_required()
def note(conversation_id):
    """Add an internal note, which never goes to the resident."""
    record = _conversation_or_404(conversation_id)
    form = NoteForm()
    if not form.validate_on_submit():
        flash("Write the note first.", "error")
        return _render_conversation(record, note_form=form, status=400)
    reply_to_conversation(record, current_user, form.body.data, internal=True)
    db.session.commit()
    flash("Internal note added.", "success")
    return redirect(url_for("email.conversation", conversation_id=record.id))


@bp.route("/conversations/<int:conversation_id>/assign", methods=["POST"])
@roles_required(*WORKERS)
def assign(conversation_id):
    """Give the conversation to someone (or back to the queue)."""
    record = _conversation_or_404(conversation_id)
    raw = request.form.get("assignee", "")
    if not ActionForm().validate_on_submit():
        abort(400)
    user = None
    if raw:
        user = db.session.get(User, int(raw)) if raw.isdigit() else None
        if user is None or not user.active:
            flash("Choose a member of staff.", "error")
            return redirect(url_for("email.conversation", conversation_id=record.id))
    record.assignee_id = user.id if user else None
    if record.status in ("open", "queued", "assigned"):
        record.status = "assigned" if user else "open"
    audit(current_user, "conversation.assign", "conversation", record.id, assignee=user.id if user else None)
    db.session.commit()
    flash(f"Assigned to {user.name}." if user else "Back in the queue.", "success")
    return redirect(url_for("email.conversation", conversation_id=record.id))


@bp.route("/conversations/<int:conversation_id>/resolve", methods=["POST"])
@roles_required(*WORKERS)
def resolve(conversation_id):
    """Mark the conversation resolved with an outcome."""
    record = _conversation_or_404(conversation_id)
    form = ResolveForm()
    if not form.validate_on_submit():
        flash("Choose an outcome.", "error")
        return _render_conversation(record, status=400)
    resolve_conversation(record, current_user, form.outcome.data)
    db.session.commit()
    flash("Conversation resolved.", "success")
    return redirect(url_for("email.inbox"))


@bp.route("/outbound/<int:outbound_id>/retry", methods=["POST"])
@roles_required(*WORKERS)
def retry(outbound_id):
    """Queue a failed email again."""
    send = db.session.get(OutboundEmail, outbound_id)
    if send is None:
        abort(404)
    check_view_conversation(current_user, send.conversation)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        retry_send(send)
        db.session.commit()
        flash("Sending again.", "success")
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
    return redirect(url_for("email.conversation", conversation_id=send.conversation_id))


@bp.route("/attachments/<int:attachment_id>")
@roles_required()
def attachment(attachment_id):
    """Serve a stored attachment: images and PDFs inline, everything else as a download."""
    item = db.session.get(Attachment, attachment_id)
    if item is None:
        abort(404)
    if item.message is not None:
        check_view_conversation(current_user, item.message.conversation)
    elif item.case_id is not None:
        check_view(current_user, db.session.get(Case, item.case_id))
    db.session.commit()  # the audit entry of a sensitive read
    inline = item.content_type in INLINE_TYPES
    safe_name = item.filename.replace('"', "'")
    response = Response(item.data, mimetype=item.content_type if inline else "application/octet-stream")
    response.headers["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{safe_name}"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.route("/quarantine")
@roles_required("admin")
def quarantine():
    """Messages the pipeline could not understand (and any never processed), for review."""
    rows = db.session.scalars(select(InboundEmail).where(InboundEmail.status.in_(("quarantined", "received")))
                              .order_by(InboundEmail.received_at.desc()).limit(200)).all()
    return render_template("email/quarantine.html", rows=rows, form=ActionForm())


@bp.route("/quarantine/<int:inbound_id>")
@roles_required("admin")
def quarantined_message(inbound_id):
    """One stored message: its reason, headers and the start of its raw text."""
    row = db.session.get(InboundEmail, inbound_id)
    if row is None:
        abort(404)
    try:
        headers = list(BytesHeaderParser(policy=policy.compat32).parsebytes(row.raw).items())
    except Exception:  # noqa: BLE001 - a reviewer still gets the raw text below
        headers = []
    preview = row.raw[:20000].decode("utf-8", errors="replace")
    audit(current_user, "inbound_email.view", "inbound_email", row.id)
    db.session.commit()
    return render_template("email/quarantined_message.html", row=row, headers=headers, preview=preview,
                           form=ActionForm())


@bp.route("/quarantine/<int:inbound_id>/raw")
@roles_required("admin")
def raw_message(inbound_id):
    """Download a stored message exactly as it arrived."""
    row = db.session.get(InboundEmail, inbound_id)
    if row is None:
        abort(404)
    response = Response(row.raw, mimetype="message/rfc822")
    response.headers["Content-Disposition"] = f'attachment; filename="inbound-{row.id}.eml"'
    return response


@bp.route("/quarantine/<int:inbound_id>/reprocess", methods=["POST"])
@roles_required("admin")
def reprocess_message(inbound_id):
    """Run a quarantined message through the pipeline again (after a fix, or a config change)."""
    row = db.session.get(InboundEmail, inbound_id)
    if row is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    audit(current_user, "inbound_email.reprocess", "inbound_email", row.id)
    try:
        result = reprocess(row)
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("email.quarantine"))
    if result.status == "quarantined":
        flash(f"Still quarantined: {result.reason}", "error")
    else:
        flash(f"Message {row.id} {result.status.replace('_', ' ')}.", "success")
    return redirect(url_for("email.quarantine"))
