"""API of the records role: subject access ZIPs, erasure, legal holds, retention runs, the audit trail."""
import tempfile

from flask import Response, request, send_file, stream_with_context
from flask_login import current_user
from marshmallow import Schema, fields, validate

from ..api import api_blueprint
from ..api.schemas import StrictSchema, Text
from ..errors import NotFound
from ..extensions import db
from ..models import Case, Customer
from . import audit_trail, erasure, holds, retention, subject_access
from .access import require_records
from .schemas import AuditPageOut

customers_blp = api_blueprint("records_customers", __name__, "Subject access, erasure and legal holds (records role)",
                              "/customers")
records_blp = api_blueprint("records_api", __name__, "Audit trail, retention runs and legal holds (records role)",
                            "/records")
BLUEPRINTS = (customers_blp, records_blp)


class SubjectAccessIn(StrictSchema):
    reference = Text(100, load_default=None)
    exclude = fields.List(Text(60), load_default=list, metadata={"description": "items to leave out, as kind:id"})
    mask = fields.List(Text(200), load_default=list, metadata={"description": "text replaced by [redacted]"})
    without_internal = fields.Boolean(load_default=False)


class EraseIn(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    reference = Text(100, load_default=None)
    dry_run = fields.Boolean(load_default=False)


class HoldIn(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    reference = Text(100, load_default=None)
    case_reference = Text(20, load_default=None, metadata={"description": "hold one case instead of the customer"})


class ReleaseIn(StrictSchema):
    reason = fields.String(load_default=None, validate=validate.Length(max=2000))


class RunIn(StrictSchema):
    dry_run = fields.Boolean(load_default=True)


class AuditArgs(StrictSchema):
    person = Text(200, load_default=None)
    customer = fields.Integer(load_default=None, validate=validate.Range(min=1))
    case = Text(40, load_default=None)
    action = Text(60, load_default=None)
    from_ = fields.Date(data_key="from", load_default=None)
    to = fields.Date(load_default=None)
    before = fields.Integer(load_default=None, validate=validate.Range(min=1))
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class HoldOut(Schema):
    id = fields.Integer()
    customer_id = fields.Integer(allow_none=True)
    case_id = fields.Integer(allow_none=True)
    reason = fields.String()
    reference = fields.String(allow_none=True)
    placed_at = fields.DateTime()
    released_at = fields.DateTime(allow_none=True)


def _customer(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}")
    return customer


@customers_blp.route("/<int:customer_id>/subject-access", methods=["POST"])
@customers_blp.arguments(SubjectAccessIn, required=False)
@customers_blp.doc(responses={"200": {"description": "the export ZIP", "content": {"application/zip": {}}}})
def subject_access_export(payload, customer_id):
    """Export everything held about a customer as a ZIP (data.json, index.html, files, manifest)."""
    require_records(current_user)
    payload = payload or {}
    _customer(customer_id)
    redaction = subject_access.Redaction.parse(payload.get("exclude"), payload.get("mask"), payload.get("without_internal"))
    # Spooled to disk and sent from there, so memory does not grow with the history.
    out = tempfile.TemporaryFile()
    result = subject_access.write_subject_access(customer_id, out, current_user, payload.get("reference"), redaction)
    db.session.commit()
    out.seek(0)
    return send_file(out, mimetype="application/zip", as_attachment=True,
                     download_name=f"subject-access-{result['customer_id']}.zip")


@customers_blp.route("/<int:customer_id>/erase", methods=["POST"])
@customers_blp.arguments(EraseIn)
def erase(payload, customer_id):
    """Erase a customer's personal data, or with dry_run count what would go; refused under a legal hold."""
    require_records(current_user)
    _customer(customer_id)
    result = erasure.erase_customer(customer_id, current_user, payload["reason"], payload.get("reference"),
                                    dry_run=payload["dry_run"])
    db.session.commit()
    # The contract's answer is the counts themselves (as the CLI's last line); "counts" keeps them together too.
    return {**result["counts"], "customer_id": result["customer_id"], "dry_run": result["dry_run"],
            "counts": result["counts"]}


@customers_blp.route("/<int:customer_id>/legal-holds", methods=["POST"])
@customers_blp.arguments(HoldIn)
@customers_blp.response(201, HoldOut)
def place_hold(payload, customer_id):
    """Place a legal hold on the customer, or on one of their cases."""
    require_records(current_user)
    customer = _customer(customer_id)
    case = None
    if payload.get("case_reference"):
        case = db.session.scalar(db.select(Case).where(Case.reference == payload["case_reference"].upper(),
                                                       Case.customer_id == customer.id))
        if case is None:
            raise NotFound("No such case of this customer")
    hold = holds.place_hold(current_user, payload["reason"], customer=None if case else customer, case=case,
                            reference=payload.get("reference"))
    db.session.commit()
    return hold


@records_blp.route("/legal-holds/<int:hold_id>/release", methods=["POST"])
@records_blp.arguments(ReleaseIn)
@records_blp.response(200, HoldOut)
def release_hold(payload, hold_id):
    """Release a legal hold."""
    require_records(current_user)
    hold = holds.release_hold(current_user, hold_id, payload.get("reason"))
    db.session.commit()
    return hold


@records_blp.route("/retention/runs", methods=["POST"])
@records_blp.arguments(RunIn)
def retention_run(payload):
    """Apply the retention schedules now (dry_run, the default, only counts)."""
    require_records(current_user)
    run = retention.run_retention(current_user, dry_run=payload["dry_run"], on_batch=db.session.commit)
    db.session.commit()
    return {"id": run.id, "dry_run": run.dry_run, "counts": run.counts, "held": run.held}


@records_blp.route("/audit", methods=["GET"])
@records_blp.arguments(AuditArgs, location="query")
@records_blp.response(200, AuditPageOut)
@records_blp.doc(responses={"200": {"description": "OK", "content": {
    "application/json": {"schema": AuditPageOut}, "text/csv": {"schema": {"type": "string"}}}}})
def audit_search(args):
    """Search the audit trail by person, customer, case, action and date; format=csv exports every match."""
    require_records(current_user)
    query = audit_trail.AuditQuery(person=args["person"], customer_id=args["customer"], case=args["case"],
                                   action=args["action"], start=args["from_"], end=args["to"])
    if args["format"] == "csv":
        response = Response(stream_with_context(audit_trail.csv_chunks(query)), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
        return response
    entries, cursor = audit_trail.search_audit(query, before=args["before"])
    return {"items": entries, "next": cursor}
