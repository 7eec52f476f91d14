"""Webchat pages: /chat for residents, /chat/widget.js to embed it, /agent/chats for staff."""
from flask import current_app, make_response, render_template, request
from sqlalchemy import or_, select

from ..auth.access import roles_required
from ..auth.roles import CHAT_STAFF, DESK_STAFF_SQL
from ..extensions import db
from ..models import OUTCOMES, CannedReply, Queue, Service, User
from ..security import public_url
from . import bp, hours, rules
from .settings import allowed_origins

TOPICS = [("", "Something else"), *rules.TOPICS]


def _embeddable(response):
    """Let the configured council sites frame the chat page, and nobody else."""
    origins = " ".join(allowed_origins(current_app))
    response.headers["Content-Security-Policy"] = f"frame-ancestors 'self' {origins}".strip()
    response.embeddable = True
    return response


@bp.route("/chat")
def chat():
    """The resident chat page (also the widget's frame when ?embed=1)."""
    embed = request.args.get("embed") == "1"
    opens = hours.next_opening()
    page = render_template("webchat/chat.html", embed=embed, topics=TOPICS, open_now=hours.is_open(),
                           opens_at=opens, max_chars=current_app.config["WEBCHAT_MAX_MESSAGE_CHARS"])
    return _embeddable(make_response(page))


@bp.route("/chat/widget.js")
def widget():
    """The one-script-tag widget: a button that opens /chat in a frame on the council's page."""
    # The body comes from configuration alone (CRM_BASE_URL), so a shared cache cannot be fed a forged address.
    script = render_template("webchat/widget.js", chat_url=public_url("webchat.chat", embed="1"),
                             widget_url=public_url("webchat.widget"))
    response = make_response(script)
    response.headers["Content-Type"] = "application/javascript; charset=utf-8"
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Vary"] = "Origin"
    origin = request.headers.get("Origin")
    if origin and origin.rstrip("/") in allowed_origins(current_app):
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


@bp.route("/agent/chats")
@roles_required(*CHAT_STAFF)
def console():
    """The agent's chat console: waiting chats, my chats side by side with each customer's timeline."""
    services = db.session.scalars(select(Service).where(Service.active.is_(True)).order_by(Service.name)).all()
    categories = {s.code: [(c.code, c.name) for c in s.categories if c.active] for s in services}
    queues = db.session.scalars(select(Queue).where(Queue.channel == rules.CHANNEL).order_by(Queue.name)).all()
    agents = db.session.scalars(select(User).where(User.active.is_(True), User.role.in_(DESK_STAFF_SQL))
                                .order_by(User.name)).all()
    # Canned replies written for chat or for any channel (email ones carry email placeholders).
    canned = db.session.scalars(select(CannedReply).where(
        or_(CannedReply.channel.is_(None), CannedReply.channel == rules.CHANNEL)).order_by(CannedReply.title)).all()
    return render_template("webchat/console.html", services=services, categories=categories, queues=queues,
                           agents=agents, canned=canned, outcomes=OUTCOMES)


