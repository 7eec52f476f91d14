"""Supervisor pages: the live dashboard with its actions, the reports and their CSV downloads."""
from datetime import datetime, timezone

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..auth.access import roles_required
from ..auth.roles import DESK_STAFF_SQL, SUPERVISORS
from ..errors import DomainError
from ..extensions import db
from ..web import act
from ..models import CHANNELS, Queue, User
from . import actions, bp, reports, tables
from .csvout import csv_response
from .figures import (
    active_banners, current_time, dashboard_snapshot, live_conversations, movable_label,
)

CHANNEL_LABELS = {
    "phone": "Phone", "email": "Email", "webchat": "Webchat", "web_form": "Web form",
    "open311": "Open311 app", "face_to_face": "Face to face", "letter": "Letter", "cases": "Cases",
}


@bp.app_template_filter("wait_duration")
def wait_duration(seconds) -> str:
    """Show a length of time as the dashboard does: 2 days 3 h, 1 h 5 min, 4 min 10 s, 9 s."""
    seconds = max(0, int(seconds or 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@bp.app_template_filter("money")
def money(pounds) -> str:
    """Show pounds the GOV.UK way: £1,234.50, and a true minus sign before the pound sign (−£8.37)."""
    if pounds is None:
        return "–"
    value = float(pounds)
    return f"{'−' if value < 0 else ''}£{abs(value):,.2f}"


@bp.app_template_filter("column_label")
def column_label(name: str) -> str:
    """Turn a report column code into its heading: estimated_cost_gbp -> Estimated cost (£)."""
    label = name[:-4] + " (£)" if name.endswith("_gbp") else name
    label = label.replace("_", " ")
    return label[:1].upper() + label[1:]


def _back(anchor: str = ""):
    return redirect(url_for("supervisor.dashboard") + (f"#{anchor}" if anchor else ""))


def _act(anchor: str, do, success: str):
    """Run an action and go back to the dashboard (its page again, 4xx, on refusal)."""
    return act(do, success, lambda _: _back(anchor), lambda error: _render_dashboard(error.status))


def _int_field(name: str):
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise DomainError(f"{name} must be a whole number", {name: ["a whole number"]}) from None


def _render_dashboard(status: int = 200):
    snapshot = dashboard_snapshot()
    agents = db.session.scalars(
        select(User).where(User.active.is_(True), User.role.in_(DESK_STAFF_SQL)).order_by(User.name)).all()
    queues = db.session.scalars(select(Queue).where(Queue.channel.in_(("webchat", "email")))
                                .order_by(Queue.channel, Queue.name)).all()
    return render_template(
        "supervisor/dashboard.html", snapshot=snapshot, agents=agents, queues=queues,
        conversations=live_conversations(), movable_label=movable_label, hours=actions.weekly_hours(), weekdays=actions.WEEKDAYS,
        labels=CHANNEL_LABELS, max_capacity=actions.MAX_CHAT_CAPACITY, chat_topics=_chat_topics(snapshot),
    ), status


def _chat_topics(snapshot) -> list[tuple[str, str]]:
    """Return the topics a supervisor can give as skills: the chat form's, then any others in use."""
    from ..webchat.rules import TOPICS

    known = dict(TOPICS)
    extra = sorted({t for a in snapshot["agents"] for t in a.get("chat_skills", ())} - set(known))
    return list(TOPICS) + [(t, t) for t in extra]


@bp.route("/")
@roles_required(*SUPERVISORS)
def dashboard():
    """The live dashboard: queues, channels and agents, pushed over Socket.IO."""
    return _render_dashboard()


@bp.post("/agents/<int:agent_id>/capacity")
@roles_required(*SUPERVISORS)
def set_capacity(agent_id):
    """Change how many chats an agent takes at once."""
    return _act("agents", lambda: actions.set_chat_capacity(current_user, agent_id, _int_field("chat_capacity")),
                "Chat capacity changed.")


@bp.post("/agents/<int:agent_id>/skills")
@roles_required(*SUPERVISORS)
def set_skills(agent_id):
    """Change which chat topics an agent handles."""
    return _act("agents", lambda: actions.set_chat_skills(current_user, agent_id, request.form.getlist("skills")),
                "Chat skills changed.")


@bp.post("/conversations/move")
@roles_required(*SUPERVISORS)
def move_conversation():
    """Move a chat or email to another agent or queue."""
    def do():
        conversation_id = _int_field("conversation_id")
        if conversation_id is None:
            raise DomainError("Choose a conversation", {"conversation_id": ["required"]})
        target = request.form.get("target", "")
        kind, _, value = target.partition(":")
        if kind == "agent" and value.isdigit():
            actions.move_conversation(current_user, conversation_id, agent_id=int(value))
        elif kind == "queue" and value:
            actions.move_conversation(current_user, conversation_id, queue_code=value)
        else:
            raise DomainError("Choose an agent or a queue", {"target": ["required"]})
    return _act("work", do, "Conversation moved.")


@bp.post("/opening-hours")
@roles_required(*SUPERVISORS)
def opening_hours():
    """Set webchat's weekly opening hours."""
    def do():
        openings = [actions.parse_opening(day, request.form.get(f"opens{day}", ""),
                                          request.form.get(f"closes{day}", "")) for day in range(7)]
        actions.set_opening_hours(current_user, [o for o in openings if o])
    return _act("hours", do, "Opening hours saved.")


@bp.post("/banners")
@roles_required(*SUPERVISORS)
def post_banner():
    """Post a banner to agents (and the chat page when public)."""
    def do():
        raw_expiry = (request.form.get("expires_at") or "").strip()
        expires = None
        if raw_expiry:
            try:
                expires = datetime.fromisoformat(raw_expiry)
            except ValueError:
                raise DomainError("Expiry is not a date and time", {"expires_at": ["e.g. 2026-11-26T17:00"]}) from None
            if expires.tzinfo is None:
                from .figures import LOCAL_TZ

                expires = expires.replace(tzinfo=LOCAL_TZ)
            expires = expires.astimezone(timezone.utc)
        actions.post_banner(current_user, request.form.get("message", ""),
                            public=request.form.get("public") == "y", expires_at=expires)
    return _act("banners", do, "Banner posted.")


@bp.post("/banners/<int:banner_id>/clear")
@roles_required(*SUPERVISORS)
def clear_banner(banner_id):
    """Take a banner down."""
    return _act("banners", lambda: actions.clear_banner(current_user, banner_id), "Banner taken down.")


def _filters_or_400():
    try:
        return reports.parse_filters(request.args), None
    except DomainError as error:
        return None, error


@bp.route("/reports")
@roles_required(*SUPERVISORS)
def report_page():
    """Reports with filters, charts and the data tables under them."""
    filters, error = _filters_or_400()
    if error is not None:
        flash(f"{error.message}: " + "; ".join(m for ms in error.fields.values() for m in ms), "error")
        return _render_reports(reports.parse_filters({}), 400)
    return _render_reports(filters)


def _render_reports(filters, status: int = 200):
    results, all_tables = tables.report_page_data(filters)
    return render_template(
        "supervisor/reports.html", filters=filters, contacts=results["contacts"], shift=results["shift"],
        tables=all_tables,
        services=db.session.execute(select_services()).all(),
        queues=db.session.scalars(select(Queue).order_by(Queue.name)).all(),
        channels=CHANNELS, labels=CHANNEL_LABELS, costs=reports.channel_costs(),
        failure=results["failure"], suppress_below=reports.SUPPRESS_BELOW,
    ), status


def select_services():
    from ..models import Service

    return select(Service.code, Service.name).order_by(Service.name)


@bp.route("/reports/<string:name>.csv")
@roles_required(*SUPERVISORS)
def report_csv(name):
    """Download one report table as CSV, with the page's filters."""
    filters, error = _filters_or_400()
    if error is not None:
        abort(400, error.message)
    table = tables.one_table(name, filters)
    if table is None:
        abort(404)
    return csv_response(f"{name}-{filters.start}-to-{filters.end}.csv", table.header, table.rows)


@bp.route("/open-data.json")
@roles_required(*SUPERVISORS)
def open_data_json():
    """The open-data extract as JSON (suppressed counts are null)."""
    filters, error = _filters_or_400()
    if error is not None:
        abort(400, error.message)
    return jsonify({"suppressed_below": reports.SUPPRESS_BELOW, "items": reports.open_data(filters)})


@bp.post("/reports/costs")
@roles_required(*SUPERVISORS)
def set_costs():
    """Save the cost per contact of each channel."""
    def save():
        pence = {ch: actions.parse_pounds(request.form[f"cost_{ch}"]) for ch in CHANNELS
                 if (request.form.get(f"cost_{ch}") or "").strip()}
        actions.set_channel_costs(current_user, pence)

    def refused(error):
        filters, _ = _filters_or_400()
        return _render_reports(filters or reports.parse_filters({}), 400)

    return act(save, "Costs per contact saved.",
               lambda _: redirect(url_for("supervisor.report_page", **request.args) + "#costs"), refused)


def banners_for_page():
    """Return the banners to show on console pages (any signed-in staff)."""
    if not current_user.is_authenticated:
        return []
    try:
        return active_banners(current_time())
    except Exception:  # noqa: BLE001 - a page must still render if the banner table is unreachable
        db.session.rollback()
        return []


def public_banners_for_page():
    """Return the banners residents may see (the chat page includes supervisor/_public_banners.html)."""
    try:
        return active_banners(current_time(), public_only=True)
    except Exception:  # noqa: BLE001 - a resident page must still render
        db.session.rollback()
        return []
