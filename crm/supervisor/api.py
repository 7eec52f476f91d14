"""API: live queue figures, contact reports, open data and the supervisor's actions."""
from flask_login import current_user
from marshmallow import RAISE, Schema, fields, validate

from ..api import api_blueprint
from ..api.schemas import AwareDateTime, StrictSchema
from ..auth.access import roles_required
from ..auth.roles import SUPERVISORS
from ..extensions import db
from ..models import CHANNELS
from . import actions, reports, tables
from .csvout import csv_response
from .figures import active_banners, queue_figures, current_time
from .schemas import BannerList, BannerOut


queues_blp = api_blueprint("queues", __name__, "Live queue figures", "/queues")
reports_blp = api_blueprint("reports", __name__, "Contact-centre reports for supervisors", "/reports")
supervisor_blp = api_blueprint("supervisor_actions", __name__, "Supervisor actions, audited", "/supervisor")
banners_blp = api_blueprint("banners", __name__, "Notices from supervisors to agents", "/banners")


def csv_too(schema=None) -> dict:
    """Document a report's 200 answer as JSON (in `schema`) or, when asked with format=csv, CSV."""
    json_schema = schema if schema is not None else {"type": "object"}
    return {"responses": {"200": {"description": "OK", "content": {
        "application/json": {"schema": json_schema}, "text/csv": {"schema": {"type": "string"}}}}}}


class QueueOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    channel = fields.String()
    service = fields.String(allow_none=True)
    target_response_minutes = fields.Integer()
    waiting = fields.Integer()
    oldest_wait_seconds = fields.Integer()
    in_progress = fields.Integer()
    over_target = fields.Integer(metadata={"description": "email waiting longer than the queue's target"})
    agents_available = fields.Integer()
    sla_at_risk = fields.Integer(metadata={"description": "open cases due within the at-risk margin"})
    sla_breached = fields.Integer(metadata={"description": "open cases past their due time"})


class QueueList(Schema):
    items = fields.List(fields.Nested(QueueOut))
    generated_at = fields.String()


class ReportArgs(Schema):
    """Query of a report: unknown arguments are refused (marshmallow raises by default)."""

    from_ = fields.Date(data_key="from", load_default=None)
    to = fields.Date(load_default=None)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))
    service = fields.String(load_default=None, validate=validate.Length(max=40))
    queue = fields.String(load_default=None, validate=validate.Length(max=60))
    channel = fields.String(load_default=None, validate=validate.OneOf(CHANNELS))


class ContactsReportOut(Schema):
    by_channel = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_outcome = fields.Dict(keys=fields.String(), values=fields.Integer())
    first_contact_resolution = fields.Float(allow_none=True)
    average_handle_seconds = fields.Dict(keys=fields.String(), values=fields.Integer())
    estimated_cost_gbp = fields.Dict(keys=fields.String(), values=fields.Float())
    # Extensions beyond the contract.
    total = fields.Integer()
    by_category = fields.Dict(keys=fields.String(), values=fields.Integer())
    estimated_cost_total_gbp = fields.Float()
    all_phone_baseline_gbp = fields.Float()
    saving_gbp = fields.Float()
    self_served_journeys = fields.Integer(metadata={"description": "journeys a help article answered (no contact)"})
    self_service_saving_gbp = fields.Float(metadata={"description": "those journeys at the phone rate less the web rate"})
    series_unit = fields.String()
    series = fields.List(fields.Dict())
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()


def _filters(args) -> reports.ReportFilters:
    return reports.parse_filters({"from": args.get("from_"), "to": args.get("to"),
                                  "service": args.get("service"), "queue": args.get("queue"),
                                  "channel": args.get("channel")})


def _filename(stem: str, filters: reports.ReportFilters) -> str:
    return f"{stem}-{filters.start.isoformat()}-to-{filters.end.isoformat()}.csv"


@queues_blp.get("")
@roles_required()
@queues_blp.response(200, QueueList)
def list_queues():
    """Return each queue's waiting, oldest wait, in progress, agents available and SLA at risk."""
    now = current_time()
    return {"items": queue_figures(now), "generated_at": now.isoformat()}


@reports_blp.get("/contacts")
@roles_required(*SUPERVISORS)
@reports_blp.arguments(ReportArgs, location="query", unknown=RAISE)
@reports_blp.response(200, ContactsReportOut)
@reports_blp.doc(**csv_too(ContactsReportOut))
def contacts(args):
    """Contacts by channel and outcome, first-contact resolution, handle time and cost (JSON or CSV).

    Counts inbound contacts whose time falls in `from`..`to` (council-local dates, inclusive;
    default the last 30 days). CSV (`format=csv`) is long form: metric, key, value.
    """
    filters = _filters(args)
    report = reports.contacts_report(filters)
    if args["format"] == "csv":
        table = tables.summary_table(report)
        return csv_response(_filename("contacts", filters), table.header, table.rows)
    return report


@reports_blp.get("/open-data")
@roles_required(*SUPERVISORS)
@reports_blp.arguments(ReportArgs, location="query", unknown=RAISE)
@reports_blp.response(200)
@reports_blp.doc(**csv_too())
def open_data(args):
    """Anonymised contacts and cases by category and month; counts 1-9 are withheld (null, or [c] in CSV)."""
    filters = _filters(args)
    rows = reports.open_data(filters)
    if args["format"] == "csv":
        table = tables.open_data_table(rows)
        return csv_response(_filename("open-data", filters), table.header, table.rows)
    return {"suppressed_below": reports.SUPPRESS_BELOW, "items": rows}


@reports_blp.get("/<string:table_name>")
@roles_required(*SUPERVISORS)
@reports_blp.arguments(ReportArgs, location="query", unknown=RAISE)
@reports_blp.response(200)
@reports_blp.doc(**csv_too())
def report_table(args, table_name):
    """Any other report table by name (sla, failure-demand, agent-states, channel-shift, ...)."""
    from ..errors import NotFound

    filters = _filters(args)
    table = tables.one_table(table_name, filters)
    if table is None:
        raise NotFound(f"No report {table_name}")
    if args["format"] == "csv":
        return csv_response(_filename(table.name, filters), table.header, table.rows)
    return {"title": table.title, "columns": table.header, "rows": table.rows}


class CapacityIn(StrictSchema):
    chat_capacity = fields.Integer(required=True, strict=True,
                                   validate=validate.Range(min=0, max=actions.MAX_CHAT_CAPACITY))


class SkillsIn(StrictSchema):
    skills = fields.List(fields.String(validate=validate.Length(min=1, max=60)), required=True,
                         validate=validate.Length(max=50),
                         metadata={"description": "chat topic codes (e.g. council_tax); [] = takes any chat"})


class MoveIn(StrictSchema):
    agent_id = fields.Integer(strict=True)
    queue = fields.String(validate=validate.Length(min=1, max=60))


class BannerIn(StrictSchema):
    message = fields.String(required=True, validate=validate.Length(min=1, max=300))
    public = fields.Boolean(load_default=False)
    expires_at = AwareDateTime(load_default=None)


class OpeningIn(StrictSchema):
    weekday = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=6))
    opens = fields.String(required=True, validate=validate.Regexp(r"^\d{2}:\d{2}$"))
    closes = fields.String(required=True, validate=validate.Regexp(r"^\d{2}:\d{2}$"))


class OpeningHoursIn(StrictSchema):
    hours = fields.List(fields.Nested(OpeningIn), required=True, validate=validate.Length(max=7))


@supervisor_blp.patch("/agents/<int:agent_id>")
@roles_required(*SUPERVISORS)
@supervisor_blp.arguments(CapacityIn)
@supervisor_blp.response(200)
def set_capacity(data, agent_id):
    """Set how many chats an agent takes at once."""
    agent = actions.set_chat_capacity(current_user, agent_id, data["chat_capacity"])
    db.session.commit()
    return {"id": agent.id, "chat_capacity": agent.chat_capacity}


@supervisor_blp.put("/agents/<int:agent_id>/skills")
@roles_required(*SUPERVISORS)
@supervisor_blp.arguments(SkillsIn)
@supervisor_blp.response(200)
def set_skills(data, agent_id):
    """Set the chat topics an agent handles (webchat skill matching); `[]` clears them."""
    agent, skills = actions.set_chat_skills(current_user, agent_id, data["skills"])
    db.session.commit()
    return {"id": agent.id, "skills": skills}


@supervisor_blp.post("/conversations/<int:conversation_id>/move")
@roles_required(*SUPERVISORS)
@supervisor_blp.arguments(MoveIn)
@supervisor_blp.response(200)
def move(data, conversation_id):
    """Give a chat or email to another agent (`agent_id`) or put it on a queue (`queue`)."""
    conversation = actions.move_conversation(current_user, conversation_id, agent_id=data.get("agent_id"),
                                             queue_code=data.get("queue"))
    db.session.commit()
    return {"id": conversation.id, "status": conversation.status, "queue_id": conversation.queue_id,
            "assignee_id": conversation.assignee_id}


@supervisor_blp.put("/opening-hours")
@roles_required(*SUPERVISORS)
@supervisor_blp.arguments(OpeningHoursIn)
@supervisor_blp.response(200)
def put_opening_hours(data):
    """Replace webchat's weekly opening hours (local time; a day not listed is closed)."""
    openings = [actions.parse_opening(h["weekday"], h["opens"], h["closes"]) for h in data["hours"]]
    rows = actions.set_opening_hours(current_user, openings)
    db.session.commit()
    return {"hours": [{"weekday": r.weekday, "opens": f"{r.opens:%H:%M}", "closes": f"{r.closes:%H:%M}"}
                      for r in rows]}


@banners_blp.get("")
@roles_required()
@banners_blp.response(200, BannerList)
def list_banners():
    """Return the banners in force (any staff: the console shows them)."""
    return {"items": active_banners()}


@banners_blp.post("")
@roles_required(*SUPERVISORS)
@banners_blp.arguments(BannerIn)
@banners_blp.response(201, BannerOut)
def post_banner(data):
    """Post a notice to agents; `public` shows it on the chat page as well."""
    banner = actions.post_banner(current_user, data["message"], public=data["public"],
                                 expires_at=data["expires_at"])
    db.session.commit()
    return banner


@banners_blp.delete("/<int:banner_id>")
@roles_required(*SUPERVISORS)
@banners_blp.response(204)
def delete_banner(banner_id):
    """Take a banner down."""
    actions.clear_banner(current_user, banner_id)
    db.session.commit()
    return ""


BLUEPRINTS = (queues_blp, reports_blp, supervisor_blp, banners_blp)
