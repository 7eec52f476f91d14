"""Records pages: a customer's subject access, erasure and holds; the audit trail; the retention schedules."""
import tempfile

from flask import Response, flash, redirect, render_template, request, send_file, stream_with_context, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import visibility
from ..auth.access import roles_required
from ..auth.roles import RECORDS_OFFICERS, RETENTION_EDITORS
from ..errors import NotFound
from ..extensions import db
from ..web import act
from ..models import (
    RETENTION_ACTIONS, Case, Customer, ErasureTombstone, LegalHold, ResidentAccount, CustomerIdentity, Service,
)
from . import audit_trail, bp, erasure, holds, retention, subject_access
from .access import is_records_officer, require_records, require_retention_editor
from .family import customer_family


def _lines(text) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _reference():
    """Return the request's reference (e.g. SAR-2026-014) the officer typed, if any."""
    return (request.form.get("reference") or "").strip()[:100] or None


def _back_to(customer_id):
    return redirect(url_for("records.customer_page", customer_id=customer_id))


@bp.route("/")
@roles_required(*RECORDS_OFFICERS)
def home():
    """Start page: find a customer by number or search; links to the audit trail and retention."""
    require_records(current_user)
    raw = (request.args.get("customer") or "").strip()
    if raw:
        if raw.isdigit() and db.session.get(Customer, int(raw)):
            return redirect(url_for("records.customer_page", customer_id=int(raw)))
        flash(f"No customer number {raw}", "error")
    q = (request.args.get("q") or "").strip()[:200]
    found = []
    if q:
        from ..customers.search import search_customers

        # Records officers answer for every record, restricted ones included: no visibility filter here.
        found = search_customers(q)
    holds_live = list(db.session.scalars(select(LegalHold).where(LegalHold.released_at.is_(None)).order_by(LegalHold.id)))
    tombstones = list(db.session.scalars(select(ErasureTombstone).order_by(ErasureTombstone.id.desc()).limit(20)))
    return render_template("records/home.html", holds=holds_live, tombstones=tombstones,
                           runs=retention.recent_runs(5), q=q, found=found)


@bp.route("/customers/<int:customer_id>")
@roles_required(*RECORDS_OFFICERS)
def customer_page(customer_id):
    """One customer as the records officer sees it: preferences, merged records, holds, export, erasure."""
    require_records(current_user)
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}")
    visibility.check_customer(current_user, customer)
    family = customer_family(customer.id)
    account = db.session.scalar(select(ResidentAccount).join(
        CustomerIdentity, ResidentAccount.identity_id == CustomerIdentity.id).where(CustomerIdentity.customer_id == customer.id))
    live = holds.live_holds(family)
    cases = list(db.session.scalars(select(Case).where(Case.customer_id == customer.id).order_by(Case.id)))
    tombstones = list(db.session.scalars(select(ErasureTombstone).where(ErasureTombstone.customer_id == customer.id)))
    return render_template("records/customer.html", customer=customer, family=family, account=account, holds=live,
                           cases=cases, tombstones=tombstones, dry_run=None)


@bp.route("/customers/<int:customer_id>/export", methods=["POST"])
@roles_required(*RECORDS_OFFICERS)
def export(customer_id):
    """Download the subject access ZIP, with the officer's redactions applied and audited."""
    require_records(current_user)
    out = tempfile.TemporaryFile()

    def write():
        redaction = subject_access.Redaction.parse(
            _lines(request.form.get("exclude")), _lines(request.form.get("mask")), request.form.get("without_internal") == "yes")
        return subject_access.write_subject_access(customer_id, out, current_user, _reference(), redaction)

    def download(result):
        out.seek(0)
        return send_file(out, mimetype="application/zip", as_attachment=True,
                         download_name=f"subject-access-{result['customer_id']}.zip")

    return act(write, None, download, lambda error: _back_to(customer_id))


@bp.route("/customers/<int:customer_id>/erase", methods=["POST"])
@roles_required(*RECORDS_OFFICERS)
def erase(customer_id):
    """Dry-run or carry out an erasure."""
    require_records(current_user)
    dry = request.form.get("action") != "erase"

    def answer(result):
        if not dry:
            return _back_to(result["customer_id"])
        customer = db.session.get(Customer, result["customer_id"])
        return render_template("records/customer.html", customer=customer, family=customer_family(customer.id),
                               account=None, holds=[], cases=[], tombstones=[], dry_run=result,
                               reason=request.form.get("reason"), reference=request.form.get("reference"))

    return act(lambda: erasure.erase_customer(customer_id, current_user, request.form.get("reason"), _reference(),
                                              dry_run=dry),
               None if dry else lambda result: f"Customer {result['customer_id']} erased; the tombstone records who, "
                                               "when and why.",
               answer, lambda error: _back_to(customer_id))


@bp.route("/customers/<int:customer_id>/holds", methods=["POST"])
@roles_required(*RECORDS_OFFICERS)
def place_hold(customer_id):
    """Place a legal hold on the customer or one of their cases."""
    require_records(current_user)
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}")
    reference = (request.form.get("case_reference") or "").strip().upper()

    def place():
        case = None
        if reference:
            case = db.session.scalar(select(Case).where(Case.reference == reference, Case.customer_id == customer.id))
            if case is None:
                raise NotFound(f"{reference} is not a case of this customer")
        holds.place_hold(current_user, request.form.get("reason"), customer=None if case else customer, case=case,
                         reference=request.form.get("reference"))

    back = lambda _: _back_to(customer_id)  # noqa: E731
    return act(place, "Legal hold placed", back, back)


@bp.route("/holds/<int:hold_id>/release", methods=["POST"])
@roles_required(*RECORDS_OFFICERS)
def release_hold(hold_id):
    """Release a legal hold."""
    require_records(current_user)

    def held_customer_page(hold):
        return _back_to(hold.customer_id or db.session.get(Case, hold.case_id).customer_id)

    return act(lambda: holds.release_hold(current_user, hold_id, request.form.get("reason")), "Legal hold released",
               held_customer_page, lambda error: redirect(url_for("records.home")))


@bp.route("/audit")
@roles_required(*RECORDS_OFFICERS)
def audit_page():
    """Search the audit trail; download the matches as CSV."""
    require_records(current_user)
    query = audit_trail.AuditQuery.parse(request.args)
    before = request.args.get("before", type=int)
    if request.args.get("format") == "csv":
        response = Response(stream_with_context(audit_trail.csv_chunks(query)), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="audit.csv"'
        return response
    entries, cursor = audit_trail.search_audit(query, before=before)
    return render_template("records/audit.html", query=query, entries=entries, cursor=cursor,
                           actors=audit_trail.actors_of(entries))


@bp.route("/retention", methods=["GET", "POST"])
@roles_required(*RETENTION_EDITORS)
def retention_page():
    """The retention schedules (records officers and admins edit them) and the log of runs."""
    require_retention_editor(current_user)
    if request.method == "POST":
        def save():
            service = None
            code = (request.form.get("service") or "").strip()
            if code:
                service = db.session.scalar(select(Service).where(Service.code == code))
                if service is None:
                    raise NotFound(f"No service {code}")
            retention.set_rule(current_user, request.form.get("kind"), request.form.get("period_days"),
                               request.form.get("action"), request.form.get("active") == "yes", service)

        back = lambda _: redirect(url_for("records.retention_page"))  # noqa: E731
        return act(save, "Schedule saved", back, back)
    rules = retention.schedule()
    services = list(db.session.scalars(select(Service).order_by(Service.name)))
    return render_template("records/retention.html", rules=rules, runs=retention.recent_runs(),
                           services=services, labels=retention.LABELS, actions=RETENTION_ACTIONS,
                           can_run=is_records_officer(current_user))


@bp.route("/retention/run", methods=["POST"])
@roles_required(*RECORDS_OFFICERS)
def retention_run():
    """Run the schedules now, or count what is due (dry run)."""
    require_records(current_user)
    dry = request.form.get("action") != "run"
    run = retention.run_retention(current_user, dry_run=dry, on_batch=db.session.commit)
    db.session.commit()
    flash(f"{'Dry run' if dry else 'Retention run'} {run.id}: {sum(run.counts.values())} records "
          f"{'due' if dry else 'dealt with'}", "success")
    return redirect(url_for("records.retention_page"))
