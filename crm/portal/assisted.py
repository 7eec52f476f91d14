"""Assisted digital: an agent fills a resident's web form for a caller; it is logged as their phone contact."""
from datetime import datetime, timezone

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import visibility
from ..auth.access import roles_required
from ..auth.roles import FRONT_LINE
from ..channels.web_form import Submission, parse_fields, published_forms, read_answers, send_confirmation, submit
from ..customers.identity import live_customer
from ..extensions import db
from ..models import Customer, FormDefinition, utcnow
from ..web import act
from . import staff_bp
from .drafts import current_draft, draft_uploads, forget, photo_location, read_uploads, set_scope
from .forms_views import question_blocks
from .questions import error_list, typed_values



def _caller_or_404(customer_id: int) -> Customer:
    customer = live_customer(db.session.get(Customer, customer_id))
    if customer is None:
        abort(404)
    return visibility.check_customer(current_user, customer)


def _form_or_404(slug: str) -> FormDefinition:
    definition = db.session.scalar(select(FormDefinition).where(FormDefinition.slug == slug[:80]))
    if definition is None:
        abort(404)
    return definition


def _started_at(raw):
    """Read the page's load time from its hidden field: the start of the handle time."""
    try:
        value = datetime.fromisoformat((raw or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value if value <= utcnow() else None


@staff_bp.get("/customers/<int:customer_id>/forms")
@roles_required(*FRONT_LINE)
def assisted_list(customer_id):
    """The forms an agent can fill for this caller."""
    customer = _caller_or_404(customer_id)
    return render_template("portal/assisted_list.html", customer=customer, forms=published_forms())


@staff_bp.route("/customers/<int:customer_id>/forms/<slug>", methods=["GET", "POST"])
@roles_required(*FRONT_LINE)
def assisted_form(customer_id, slug):
    """Fill a form for the caller: the same questions, all on one page; the case joins their timeline."""
    customer = _caller_or_404(customer_id)
    definition = _form_or_404(slug)
    specs = parse_fields(definition.fields)
    set_scope(f"customer-{customer.id}")
    if request.method == "GET":
        return _render(customer, definition, specs, {}, {}, draft_uploads(current_draft(definition)),
                       utcnow().isoformat())
    answers, errors = read_answers(specs, request.form)
    uploads, upload_errors = read_uploads(definition, specs, request.files, request.form)
    errors.update(upload_errors)
    started = request.form.get("started_at") or ""
    if errors:
        db.session.commit()
        return _render(customer, definition, specs, typed_values(specs, request.form), errors, uploads, started, 400)
    location = photo_location(current_draft(definition))

    def raise_case():
        _contact, case = submit(Submission(definition, answers, None, customer, uploads, location),
                                agent=current_user, started_at=_started_at(started))
        forget(definition)
        return case

    def raised(case) -> str:
        emailed = send_confirmation(definition, case, customer)  # after the commit: the case must exist to be mailed
        return (f"Case {case.reference} raised with {case.service.name} and logged as a phone contact."
                + (" The caller has been emailed the reference." if emailed else ""))

    return act(raise_case, raised, lambda _: redirect(url_for("console.customer", customer_id=customer.id), 303),
               lambda error: _render(customer, definition, specs, typed_values(specs, request.form), {}, {}, started,
                                     error.status))


def _render(customer, definition, specs, values, errors, uploads, started_at, status=200):
    return render_template(
        "portal/assisted_form.html", customer=customer, definition=definition, started_at=started_at,
        blocks=question_blocks(specs, values, errors, uploads), errors=error_list(errors, specs),
        multipart=any(s.type == "file" for s in specs),
    ), status
