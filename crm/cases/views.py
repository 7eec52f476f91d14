"""Console pages for cases: the service work list, the case page, raising a case, routing-rule admin."""
from decimal import Decimal

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import visibility
from ..auth.access import roles_required
from ..auth.roles import ADMINS, CASE_RAISERS, CASE_WORKERS, SERVICE_OFFICER, SUPERVISORS
from ..customers.identity import live_customer
from ..customers.timeline import record_contact
from ..errors import DomainError, Forbidden
from ..extensions import db
from ..web import act
from ..navigation import add_nav_item
from ..models import Case, Category, Contact, Customer, Open311Request, Queue, RoutingRule, Service, User
from ..portal.accounts import wants_email_updates
from .. import labels
from . import lifecycle
from . import routing
from . import service as cases
from .attachments import case_attachments, is_image, visible_attachments
from .places import known_coordinates
from .forms import (
    STATUS_CHOICES, AssignForm, AttachForm, DeleteForm, MergeCaseForm, NewCaseForm, NoteForm, PublicUpdateForm,
    RerouteForm, RoutingRuleForm, SplitForm, StatusForm,
)
from .queries import active_services, can_work, check_view, work_list

bp = Blueprint("cases", __name__)
add_nav_item("Cases", "cases.work_list_page", *CASE_WORKERS)
add_nav_item("Routing rules", "cases.routing_rules", *ADMINS)
bp.record_once(lambda state: labels.init_app(state.app))


@bp.route("/cases")
@roles_required(*CASE_WORKERS)
def work_list_page():
    """A service's work list: filter by status, SLA at risk, assigned to me."""
    services = active_services()
    code = request.args.get("service") or (current_user.service.code if current_user.service else "")
    service = next((s for s in services if s.code == code), None)
    status = request.args.get("status") or None
    if status not in dict(STATUS_CHOICES):
        status = None
    at_risk, mine = request.args.get("at_risk") == "1", request.args.get("mine") == "1"
    page = request.args.get("page", 1, type=int) or 1
    items, has_next = work_list(service.id if service else None, status=status, at_risk=at_risk,
                                assignee_id=current_user.id if mine else None, page=max(1, min(page, 10000)),
                                viewer=current_user)
    return render_template("cases/work_list.html", items=items, services=services, service=service,
                           status=status, at_risk=at_risk, mine=mine, page=page, has_next=has_next,
                           status_choices=STATUS_CHOICES, labels=lifecycle.STATUS_LABELS)


def _case_or_404(reference):
    try:
        case = cases.get_case(reference)
    except DomainError:
        abort(404)
    check_view(current_user, case)
    return case


def _render_case(case, status=200, **forms):
    status_form = forms.get("status_form") or StatusForm()
    status_form.status.choices = [(s, labels.label(s, "case_status")) for s in lifecycle.allowed_next(case)]
    assign_form = forms.get("assign_form") or AssignForm()
    officers = db.session.scalars(select(User).where(User.active.is_(True), (
        (User.role == SERVICE_OFFICER) & (User.service_id == case.service_id)) | User.role.in_(SUPERVISORS))
        .order_by(User.name)).all()
    assign_form.assignee_id.choices = [(0, f"{case.service.name} team")] + [(u.id, u.name) for u in officers]
    assign_form.assignee_id.data = case.assignee_id or 0
    reroute_form = forms.get("reroute_form") or RerouteForm()
    reroute_form.service.choices = [(s.code, s.name) for s in active_services() if s.id != case.service_id]
    contacts = db.session.scalars(select(Contact).where(Contact.case_id == case.id).order_by(Contact.occurred_at)).all()
    media_url = db.session.scalar(select(Open311Request.media_url).where(Open311Request.case_id == case.id))
    attachments = visible_attachments(current_user, case_attachments(case))
    resident = live_customer(case.customer)
    resident_emailed = any(i.kind == "email" for i in resident.identities) and wants_email_updates(resident)
    return render_template(
        "cases/case.html", case=case, labels=lifecycle.STATUS_LABELS, can_work=can_work(current_user, case),
        attachments=attachments, is_image=is_image, media_url=media_url if _web_url(media_url) else None,
        confirm_update=forms.get("confirm_update", False), resident_emailed=resident_emailed,
        status_form=status_form, assign_form=assign_form, reroute_form=reroute_form,
        note_form=forms.get("note_form") or NoteForm(), update_form=forms.get("update_form") or PublicUpdateForm(),
        merge_form=forms.get("merge_form") or MergeCaseForm(), split_form=SplitForm(), contacts=contacts,
        merged_into=db.session.get(Case, case.merged_into_id) if case.merged_into_id else None,
    ), status


def _web_url(value) -> bool:
    """Say whether a link from outside is a plain web address (never javascript: or data:)."""
    return bool(value) and value.lower().startswith(("https://", "http://"))


@bp.route("/cases/<reference>")
@roles_required()
def case_page(reference):
    """Work a case: its details, history, and the actions the user may take."""
    return _render_case(_case_or_404(reference))


def _act(reference, form_name, form_class, action, done_message, needs_work=True):
    """Validate a case-page form, run the action, commit, and come back to the case page."""
    case = _case_or_404(reference)
    if needs_work and not can_work(current_user, case):
        abort(403)
    form = form_class()
    if not form.validate_on_submit():
        flash("Nothing was changed: check the form.", "error")
        return _render_case(case, 400, **{form_name: form})
    return act(lambda: action(case, form), done_message,
               lambda _: redirect(url_for("cases.case_page", reference=case.reference)),
               lambda error: _render_case(db.session.get(Case, case.id), error.status))


@bp.route("/cases/<reference>/status", methods=["POST"])
@roles_required(*CASE_WORKERS)
def change_status(reference):
    """Move the case along its lifecycle."""
    return _act(reference, "status_form", StatusForm,
                lambda case, f: cases.change_status(case, f.status.data, current_user, reason=f.reason.data or None),
                "Status changed.")


@bp.route("/cases/<reference>/assign", methods=["POST"])
@roles_required(*CASE_WORKERS)
def assign(reference):
    """Give the case to an officer, or back to the team."""
    def run(case, form):
        user = db.session.get(User, form.assignee_id.data) if form.assignee_id.data else None
        if form.assignee_id.data and user is None:
            raise DomainError("No such officer", {"assignee": ["unknown user"]})
        cases.assign_case(case, user, current_user)
    return _act(reference, "assign_form", AssignForm, run, "Assignment saved.")


@bp.route("/cases/<reference>/reroute", methods=["POST"])
@roles_required(*CASE_WORKERS)
def reroute(reference):
    """Send the case to another service."""
    return _act(reference, "reroute_form", RerouteForm,
                lambda case, f: cases.reroute_case(case, f.service.data, current_user, reason=f.reason.data),
                "Case re-routed; the new service has been told.")


@bp.route("/cases/<reference>/notes", methods=["POST"])
@roles_required(*CASE_RAISERS)
def add_note(reference):
    """Add an internal note (any staff who may read the case)."""
    return _act(reference, "note_form", NoteForm,
                lambda case, f: cases.add_note(case, f.body.data, current_user), "Note added.", needs_work=False)


@bp.route("/cases/<reference>/updates", methods=["POST"])
@roles_required(*CASE_WORKERS)
def public_update(reference):
    """Post a public update after the officer has seen what the resident will read; they are emailed too."""
    form = PublicUpdateForm()
    if request.form.get("confirmed") != "1" and form.validate_on_submit():
        case = _case_or_404(reference)
        if not can_work(current_user, case):
            abort(403)
        return _render_case(case, update_form=form, confirm_update=True)
    return _act(reference, "update_form", PublicUpdateForm,
                lambda case, f: cases.post_public_update(case, f.body.data, current_user),
                "Update posted to the resident.")


@bp.route("/cases/<reference>/merge", methods=["POST"])
@roles_required(*CASE_WORKERS)
def merge(reference):
    """Merge this duplicate into another case."""
    def run(case, form):
        target = cases.get_case(form.into.data)
        check_view(current_user, target)
        if not can_work(current_user, target):
            raise Forbidden(f"You may not change {target.reference}")
        cases.merge_cases(case, target, current_user, form.reason.data or None)
    return _act(reference, "merge_form", MergeCaseForm, run, "Merged; this case now points to the one kept.")


@bp.route("/cases/<reference>/split", methods=["POST"])
@roles_required(*CASE_WORKERS)
def split(reference):
    """Take a contact off this case into a new case."""
    case = _case_or_404(reference)
    if not can_work(current_user, case):
        abort(403)
    form = SplitForm()
    contact = db.session.get(Contact, request.form.get("contact_id", type=int) or 0)
    if not form.validate_on_submit() or contact is None:
        flash("Choose a contact on this case to split off.", "error")
        return _render_case(case, 400)
    return act(lambda: cases.split_contact(case, contact, current_user),
               lambda new_case: f"Contact split off into {new_case.reference}.",
               lambda new_case: redirect(url_for("cases.case_page", reference=new_case.reference)),
               lambda error: _render_case(db.session.get(Case, case.id), error.status))


def _category_choices():
    categories = db.session.scalars(select(Category).join(Service).where(
        Category.active.is_(True), Service.active.is_(True)).order_by(Service.name, Category.name)).all()
    return [(c.code, f"{c.service.name}: {c.name}") for c in categories]


def _float(value):
    return float(value) if isinstance(value, Decimal) else value


def _settle_location(form, addresses) -> bool:
    """Turn the chosen place into an address line and, where the database knows it, coordinates."""
    choice = form.where.data or ""
    if choice in addresses:
        form.location_address.data = addresses[choice].one_line()
    elif choice == "other":
        typed = (form.location_address.data or "").strip()
        if not typed and form.latitude.data is None and "where" not in request.form:
            return True  # an older client that sends no place at all
        if not typed and form.latitude.data is None:
            form.location_address.errors = list(form.location_address.errors) + [
                "Enter a street, landmark or postcode, or choose another option"]
            return False
    elif choice == "":
        form.location_address.data = None
        form.latitude.data = form.longitude.data = None
        return True
    else:
        form.where.errors = list(form.where.errors) + ["Choose where the problem is"]
        return False
    if form.latitude.data is None and form.longitude.data is None:
        lat, lon = known_coordinates(form.location_address.data)
        form.latitude.data, form.longitude.data = lat, lon
    return True


@bp.route("/customers/<int:customer_id>/cases/new", methods=["GET", "POST"])
@roles_required(*CASE_RAISERS)
def new_case(customer_id):
    """Raise a case for a customer, first offering open cases of the same problem nearby."""
    customer = live_customer(db.session.get(Customer, customer_id))
    if customer is None:
        abort(404)
    visibility.check_customer(current_user, customer)
    form = NewCaseForm()
    form.category.choices = _category_choices()
    addresses = {f"address-{a.id}": a for a in customer.addresses}
    form.where.choices = [(key, f"The caller's address: {a.one_line()}") for key, a in addresses.items()] + [
        ("other", "Somewhere else: a street, landmark or postcode"), ("", "No particular place")]
    if request.method == "GET" and addresses:
        form.where.data = next(iter(addresses))
    suggestions = []
    if form.validate_on_submit() and _settle_location(form, addresses):
        lat, lon = _float(form.latitude.data), _float(form.longitude.data)
        if not form.raise_anyway.data:
            suggestions = cases.nearby_open_cases(form.category.data, latitude=lat, longitude=lon,
                                                  address=form.location_address.data, viewer=current_user)
        if not suggestions:
            def raise_case():
                contact = record_contact(customer, "phone", summary=form.title.data, notes=form.description.data,
                                         category=form.category.data, outcome="case_raised", agent=current_user)
                return cases.open_case(customer, None, form.category.data, form.title.data, form.description.data,
                                       priority=form.priority.data or None, actor=current_user, contact=contact,
                                       location_address=form.location_address.data or None,
                                       latitude=lat, longitude=lon)

            return act(raise_case, lambda case: f"Case {case.reference} raised with {case.service.name}.",
                       lambda case: redirect(url_for("cases.case_page", reference=case.reference)),
                       lambda error: (render_template("cases/new_case.html", form=form, customer=customer,
                                                      suggestions=[], attach_form=AttachForm()), error.status))
    status = 400 if form.errors or any(f.errors for f in form) else 200
    return render_template("cases/new_case.html", form=form, customer=customer, suggestions=suggestions,
                           attach_form=AttachForm()), status


@bp.route("/customers/<int:customer_id>/cases/attach", methods=["POST"])
@roles_required(*CASE_RAISERS)
def attach(customer_id):
    """Record the caller's report on an existing case instead of raising a duplicate."""
    customer = live_customer(db.session.get(Customer, customer_id))
    form = AttachForm()
    if customer is None:
        abort(404)
    visibility.check_customer(current_user, customer)
    if not form.validate_on_submit():
        abort(400)
    case = _case_or_404(form.reference.data)

    def attach_report():
        contact = record_contact(customer, "phone", summary=f"Reported the same problem as {case.reference}",
                                 notes=form.notes.data or None, category=form.category.data or case.category,
                                 outcome="case_raised", agent=current_user)
        cases.attach_contact(case, contact, current_user)

    return act(attach_report, f"Added to {case.reference}; no duplicate raised.",
               lambda _: redirect(url_for("console.customer", customer_id=customer.id)),
               lambda error: redirect(url_for("cases.new_case", customer_id=customer.id)))


# Routing rules (admins)

def _rule_form(rule=None):
    form = RoutingRuleForm(obj=rule)
    form.category_code.choices = _category_choices()
    services = db.session.scalars(select(Service).order_by(Service.name)).all()
    form.service_id.choices = [(s.id, s.name) for s in services]
    queues = db.session.scalars(select(Queue).where(Queue.channel == "cases").order_by(Queue.name)).all()
    form.queue_id.choices = [(0, "The service's case queue")] + [(q.id, q.name) for q in queues]
    if rule is not None and not form.is_submitted():
        form.queue_id.data = rule.queue_id or 0
    return form


def _rule_settings(form) -> dict:
    return {"position": form.position.data or 0, "category_code": form.category_code.data,
            "keywords": form.keywords.data, "service_id": form.service_id.data, "queue_id": form.queue_id.data or None,
            "priority": form.priority.data, "sla_hours": form.sla_hours.data, "active": form.active.data}


def _form_refused(form, page):
    """Put a refusal's field messages on the form and show the page again (400)."""
    def refused(error):
        for field, messages in error.fields.items():
            if field in form:
                form[field].errors = list(form[field].errors) + list(messages)
        return page(400)
    return refused


@bp.route("/admin/routing-rules", methods=["GET", "POST"])
@roles_required(*ADMINS)
def routing_rules():
    """List routing rules and add one."""
    form = _rule_form()

    def rules_page(status):
        rules = db.session.scalars(select(RoutingRule).order_by(RoutingRule.category_code, RoutingRule.position,
                                                                RoutingRule.id)).all()
        return render_template("cases/routing_rules.html", rules=rules, form=form, delete_form=DeleteForm()), status

    if form.validate_on_submit():
        return act(lambda: routing.save_rule(None, current_user, **_rule_settings(form)), "Routing rule added.",
                   lambda _: redirect(url_for("cases.routing_rules")), _form_refused(form, rules_page))
    return rules_page(400 if form.errors else 200)


@bp.route("/admin/routing-rules/<int:rule_id>", methods=["GET", "POST"])
@roles_required(*ADMINS)
def routing_rule(rule_id):
    """Edit a routing rule."""
    rule = db.get_or_404(RoutingRule, rule_id)
    form = _rule_form(rule)

    def rule_page(status):
        return render_template("cases/routing_rule.html", rule=rule, form=form), status

    if form.validate_on_submit():
        return act(lambda: routing.save_rule(rule, current_user, **_rule_settings(form)), "Routing rule saved.",
                   lambda _: redirect(url_for("cases.routing_rules")), _form_refused(form, rule_page))
    return rule_page(400 if form.errors else 200)


@bp.route("/admin/routing-rules/<int:rule_id>/delete", methods=["POST"])
@roles_required(*ADMINS)
def delete_routing_rule(rule_id):
    """Delete a routing rule (cases already routed keep their service)."""
    rule = db.get_or_404(RoutingRule, rule_id)
    if not DeleteForm().validate_on_submit():
        abort(400)
    back = lambda _: redirect(url_for("cases.routing_rules"))  # noqa: E731
    return act(lambda: routing.delete_rule(rule, current_user), "Routing rule deleted.", back, back)
