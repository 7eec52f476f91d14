"""Console pages: search, customer page with timeline, new caller, log a call, merge."""
from datetime import datetime, timezone

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import visibility
from ..audit import audit
from ..auth.access import roles_required
from ..auth.roles import EDITOR, FRONT_LINE, RECORDS, STAFF
from ..cases.lifecycle import DONE_STATUSES
from ..channels.phone import CaseRequest, log_call
from ..customers.identity import create_customer, live_customer
from ..customers.merge import merge_customers
from ..customers.search import search_customers
from ..customers.timeline import describe_event, timeline_page
from ..errors import DomainError, NotFound
from ..extensions import db
from ..knowledge.articles import record_use as record_article_use
from ..models import Case, Category, Customer, Service, utcnow
from ..web import act
from . import bp
from .forms import OUTCOME_LABELS, CallForm, CustomerForm, MergeForm, SensitivityForm


def category_choices():
    """Return categories grouped by service for a select (value is the category code), after an empty choice."""
    services = db.session.scalars(
        select(Service).where(Service.active.is_(True)).order_by(Service.name)).all()
    groups = {}
    for service in services:
        options = [(c.code, c.name) for c in service.categories if c.active]
        if options:
            groups[service.name] = options
    return {None: [("", "Choose the reason")], **(groups or {"General": [("general_enquiry", "General enquiry")]})}


def _parse_instant(raw):
    """Read an ISO 8601 instant from a hidden field; None if missing or malformed."""
    try:
        value = datetime.fromisoformat((raw or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _customer_or_404(customer_id):
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}")
    return visibility.check_customer(current_user, customer)


@bp.route("/")
@roles_required(*STAFF)
def home():
    """Send staff to the page their role starts from (records officers and editors work outside the console)."""
    if current_user.role == RECORDS:
        return redirect(url_for("records.home"))
    if current_user.role == EDITOR:
        return redirect(url_for("knowledge.list_page"))
    return redirect(url_for("console.search"))


@bp.route("/console")
@roles_required()
def search():
    """One search box for the caller: name, phone, email, postcode or case reference."""
    q = request.args.get("q", "").strip()[:200]
    results = visibility.search_results(current_user, q, search_customers(q)) if q else []
    return render_template("console/search.html", q=q, results=results)


@bp.route("/customers/new", methods=["GET", "POST"])
@roles_required(*FRONT_LINE)
def new_customer():
    """Start a new caller's record."""
    form = CustomerForm()
    if request.method == "GET":
        q = request.args.get("q", "")
        if "@" in q:
            form.email.data = q
        elif sum(ch.isdigit() for ch in q) >= 6:
            form.phone.data = q
        else:
            form.name.data = q
    if form.validate_on_submit():
        def create():
            address = {"line1": form.line1.data, "line2": form.line2.data, "town": form.town.data,
                       "postcode": form.postcode.data}
            made = create_customer(form.name.data, form.email.data or None, form.phone.data or None,
                                   address if any(address.values()) else None)
            audit(current_user, "customer.create", "customer", made.id)
            return made

        def refused(error):
            for field, messages in error.fields.items():
                if field in form:
                    form[field].errors = list(form[field].errors) + list(messages)
            return render_template("console/customer_form.html", form=form), error.status

        return act(create, None, lambda made: redirect(url_for("console.customer", customer_id=made.id)), refused)
    status = 400 if form.errors else 200
    return render_template("console/customer_form.html", form=form), status


@bp.route("/customers/<int:customer_id>")
@roles_required()
def customer(customer_id):
    """The customer page: summary, open cases, log-a-call panel and the timeline."""
    record = _customer_or_404(customer_id)
    if record.merged_into_id:
        flash(f"Customer {record.id} was merged into this record.", "info")
        return redirect(url_for("console.customer", customer_id=live_customer(record).id))
    form = CallForm()
    return _render_customer(record, form)


def _render_customer(record, form, status=200):
    form.category.choices = category_choices()
    if not form.started_at.data:
        form.started_at.data = utcnow().isoformat()
    before = request.args.get("before")
    try:
        entries, next_cursor = timeline_page(record.id, 25, before)
    except DomainError:
        entries, next_cursor = timeline_page(record.id, 25, None)
    entries = visibility.redact_timeline(current_user, entries)
    open_cases = db.session.scalars(
        select(Case).where(Case.customer_id == record.id, Case.status.notin_(DONE_STATUSES),
                           visibility.case_condition(current_user))
        .order_by(Case.created_at.desc())).all()
    show_sensitive = visibility.check_vulnerability(current_user, record)
    return render_template(
        "console/customer.html", customer=record, form=form, entries=entries, next_cursor=next_cursor,
        open_cases=open_cases, describe_event=describe_event, outcome_labels=OUTCOME_LABELS,
        show_sensitive=show_sensitive, merge_form=MergeForm(),
        can_edit_sensitive=visibility.can_edit_vulnerability(current_user, record),
        sensitivity_form=SensitivityForm(vulnerability_notes=record.vulnerability_notes if show_sensitive else None,
                                         restricted=record.restricted),
    ), status


@bp.route("/customers/<int:customer_id>/calls", methods=["POST"])
@roles_required()
def log_call_view(customer_id):
    """Log a call from the customer page, optionally raising a case."""
    record = live_customer(_customer_or_404(customer_id))
    form = CallForm()
    form.category.choices = category_choices()
    if not form.validate_on_submit():
        flash("The call was not logged: check the fields marked below.", "error")
        return _render_customer(record, form, 400)
    case_request = None
    if form.raise_case.data:
        category = db.session.scalar(select(Category).where(Category.code == form.category.data))
        if category is None or not (form.case_title.data or "").strip():
            form.case_title.errors = list(form.case_title.errors) + ["Give the case a title"]
            return _render_customer(record, form, 400)
        case_request = CaseRequest(service=category.service.code, category=category.code,
                                   title=form.case_title.data, description=form.case_description.data or "",
                                   priority=form.case_priority.data)
    started = _parse_instant(form.started_at.data)
    ended = _parse_instant(form.ended_at.data) or utcnow()
    if started and started > ended:
        started = ended

    def log():
        contact, case = log_call(current_user, customer_id=record.id, direction=form.direction.data,
                                 category=form.category.data, notes=form.notes.data or "",
                                 outcome=form.outcome.data, started_at=started, ended_at=ended,
                                 case=case_request)
        record_article_use(current_user, request.form.getlist("article_ids"), "phone", contact_id=contact.id)
        return case

    def logged(case) -> str:
        return "Call logged." + (f" Case {case.reference} raised with {case.service.name}." if case else "")

    return act(log, logged, lambda _: redirect(url_for("console.customer", customer_id=record.id)),
               lambda error: _render_customer(record, form, error.status))


@bp.route("/customers/<int:customer_id>/merge", methods=["POST"])
@roles_required(*FRONT_LINE)
def merge(customer_id):
    """Merge another customer's record into this one."""
    target = _customer_or_404(customer_id)
    form = MergeForm()
    if not form.validate_on_submit():
        flash("Give the number of the customer to merge in.", "error")
        return redirect(url_for("console.customer", customer_id=target.id))
    source = db.session.get(Customer, form.source_id.data)
    if source is None:
        flash(f"No customer {form.source_id.data}.", "error")
        return redirect(url_for("console.customer", customer_id=target.id))

    def merge_in():
        visibility.check_customer_merge(current_user, source, target)
        merge_customers(source, target, current_user, keep_name=form.keep_name.data)

    back = lambda _: redirect(url_for("console.customer", customer_id=target.id))  # noqa: E731
    return act(merge_in, f"Customer {source.id} merged into this record; nothing was lost.", back, back)
