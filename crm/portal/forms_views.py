"""Public web forms: /forms/ lists them; /forms/<slug> serves each, on one page or a question a page."""
from datetime import datetime

from flask import abort, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import select

from ..channels.web_form import (
    ResidentDetails, Submission, category_name, display_value, parse_fields, published_forms, read_answer,
    read_answers, read_resident_details, send_confirmation, submit,
)
from ..extensions import db, limiter
from ..models import FormDefinition
from . import bp
from .accounts import account_customer, current_resident
from .drafts import current_draft, draft_uploads, forget, photo_location, read_uploads
from .questions import (
    error_list, keep_location_params, question_params, resident_detail_params, stored_values, typed_values,
)

DETAILS_STEP = "your-details"
CHECK_STEP = "check-answers"


def submit_limit() -> str:
    """Rate limit on sending a form, per address (config PORTAL_SUBMIT_LIMIT)."""
    return current_app.config.get("PORTAL_SUBMIT_LIMIT", "10 per minute;100 per hour")


def step_limit() -> str:
    """Rate limit on answering single questions of a long form (config PORTAL_STEP_LIMIT)."""
    return current_app.config.get("PORTAL_STEP_LIMIT", "60 per minute")


def published_form_or_404(slug: str) -> FormDefinition:
    """Return the published form with this slug or answer 404."""
    definition = db.session.scalar(select(FormDefinition).where(
        FormDefinition.slug == slug[:80], FormDefinition.published.is_(True)))
    if definition is None:
        abort(404)
    return definition


def signed_in_customer():
    """Return the customer of the signed-in resident, if any."""
    return account_customer(current_resident())


@bp.get("/forms/")
def form_list():
    """List the forms residents can use, grouped by service."""
    groups: dict[str, list] = {}
    for definition in published_forms():
        groups.setdefault(definition.service.name, []).append(definition)
    return render_template("portal/form_list.html", groups=dict(sorted(groups.items())))


def question_blocks(specs, values, errors, uploads, heading=False):
    """Return (component, params) for each question, photo questions with their location checkbox."""
    blocks = []
    for spec in specs:
        blocks.append(question_params(spec, values.get(spec.name), errors.get(spec.name), heading,
                                      uploaded=uploads.get(spec.name)))
        if spec.type == "file":
            blocks.append(("checkboxes", keep_location_params(spec, bool(values.get(spec.keep_location_name)))))
    return blocks


def _render_single(definition, specs, values, errors, uploads, customer, status=200):
    details = None if customer else resident_detail_params(values, errors)
    return render_template(
        "portal/form.html", definition=definition, blocks=question_blocks(specs, values, errors, uploads),
        details=details, customer=customer, errors=error_list(errors, specs), has_errors=bool(errors),
        multipart=any(s.type == "file" for s in specs),
    ), status


@bp.route("/forms/<slug>", methods=["GET", "POST"])
@limiter.limit(submit_limit, methods=["POST"])
def form_page(slug):
    """Show a form (or the start page of a long one) and take a whole-form submission."""
    definition = published_form_or_404(slug)
    specs = parse_fields(definition.fields)
    customer = signed_in_customer()
    if definition.one_question_per_page and request.method == "GET":
        # A whole-form POST is still taken below, so scripts and the contract's one-post path work.
        first = specs[0].name if specs else (DETAILS_STEP if customer is None else CHECK_STEP)
        return render_template("portal/form_start.html", definition=definition,
                               start_url=url_for(".form_step", slug=slug, step=first))
    if request.method == "GET":
        draft = current_draft(definition)
        values = stored_values(specs, draft.answers) if draft else {}
        return _render_single(definition, specs, values, {}, draft_uploads(draft), customer)
    answers, errors = read_answers(specs, request.form)
    values = typed_values(specs, request.form)
    details = None
    if customer is None:
        details, detail_errors, typed = read_resident_details(request.form)
        errors.update(detail_errors)
        values.update(typed)
    uploads, upload_errors = read_uploads(definition, specs, request.files, request.form)
    errors.update(upload_errors)
    if errors:
        db.session.commit()  # photos that passed are kept for the next try
        return _render_single(definition, specs, values, errors, uploads, customer, 400)
    location = photo_location(current_draft(definition))
    return _finish(Submission(definition, answers, details, customer, uploads, location))


def _finish(submission: Submission):
    """Raise the case, commit, email the reference, and show the confirmation."""
    definition = submission.definition
    _contact, case = submit(submission)
    forget(definition)
    db.session.commit()
    emailed = send_confirmation(definition, case, case.customer)
    session["submitted"] = {"form": definition.slug, "reference": case.reference, "emailed": emailed,
                            "respond_by": _iso(case.first_response_due_at), "resolve_by": _iso(case.sla_due_at)}
    return redirect(url_for(".form_confirmation", slug=definition.slug), 303)


def _iso(value):
    return value.isoformat() if value else None


def _instant(raw):
    """Read back an ISO 8601 time kept in the session (None when missing or garbled)."""
    try:
        return datetime.fromisoformat(raw) if raw else None
    except (TypeError, ValueError):
        return None


@bp.get("/forms/<slug>/confirmation")
def form_confirmation(slug):
    """Show the reference of the form this browser has just sent."""
    definition = published_form_or_404(slug)
    done = session.get("submitted") or {}
    if done.get("form") != definition.slug:
        return redirect(url_for(".form_page", slug=definition.slug))
    return render_template("portal/confirmation.html", definition=definition, reference=done["reference"],
                           emailed=done.get("emailed"), respond_by=_instant(done.get("respond_by")),
                           resolve_by=_instant(done.get("resolve_by")))


# --- a question a page ---------------------------------------------------------------------

def _steps(specs, customer) -> list[str]:
    return [s.name for s in specs] + ([] if customer is not None else [DETAILS_STEP])


def _next_url(definition, specs, customer, step):
    if request.args.get("change"):
        return url_for(".form_step", slug=definition.slug, step=CHECK_STEP)
    steps = _steps(specs, customer)
    position = steps.index(step)
    following = steps[position + 1] if position + 1 < len(steps) else CHECK_STEP
    return url_for(".form_step", slug=definition.slug, step=following)


def _back_url(definition, specs, customer, step):
    if request.args.get("change"):
        return url_for(".form_step", slug=definition.slug, step=CHECK_STEP)
    steps = _steps(specs, customer)
    if step == CHECK_STEP:
        return url_for(".form_step", slug=definition.slug, step=steps[-1]) if steps else url_for(
            ".form_page", slug=definition.slug)
    position = steps.index(step)
    if position == 0:
        return url_for(".form_page", slug=definition.slug)
    return url_for(".form_step", slug=definition.slug, step=steps[position - 1])


def _first_missing(specs, customer, draft):
    """Return the first step still needing an answer, or None when the form is complete."""
    answers = (draft.answers if draft else None) or {}
    uploads = draft_uploads(draft)
    for spec in specs:
        if spec.name not in answers and spec.type != "file":
            return spec.name
        if spec.required and spec.type == "file" and spec.name not in uploads:
            return spec.name
    if customer is None and not answers.get("_resident"):
        return DETAILS_STEP
    return None


@bp.route("/forms/<slug>/<step>", methods=["GET", "POST"])
@limiter.limit(step_limit, methods=["POST"])
def form_step(slug, step):
    """One page of a long form: a question, 'your details', or 'check your answers'."""
    definition = published_form_or_404(slug)
    if not definition.one_question_per_page:
        abort(404)
    specs = parse_fields(definition.fields)
    customer = signed_in_customer()
    if step == CHECK_STEP:
        return _check_answers(definition, specs, customer)
    if step not in _steps(specs, customer):
        abort(404)
    back = _back_url(definition, specs, customer, step)
    draft = current_draft(definition)
    answers = dict(draft.answers) if draft else {}
    if step == DETAILS_STEP:
        values = dict(answers.get("_resident") or {})
        errors = {}
        if request.method == "POST":
            details, errors, values = read_resident_details(request.form)
            if not errors:
                draft = current_draft(definition, create=True)
                draft.answers = {**draft.answers, "_resident": vars(details)}
                db.session.commit()
                return redirect(_next_url(definition, specs, customer, step), 303)
        return render_template("portal/form_details.html", definition=definition, back=back,
                               blocks=resident_detail_params(values, errors, heading=True),
                               errors=error_list(errors, []), has_errors=bool(errors)), 400 if errors else 200
    spec = next(s for s in specs if s.name == step)
    uploads = draft_uploads(draft)
    values, errors = stored_values(specs, answers), {}
    if request.method == "POST":
        if spec.type == "file":
            uploads, errors = read_uploads(definition, [spec], request.files, request.form)
            values = typed_values([spec], request.form)
        else:
            value, error = read_answer(spec, request.form)
            if error:
                errors = {spec.name: error}
                values = typed_values([spec], request.form)
            else:
                draft = current_draft(definition, create=True)
                draft.answers = {**draft.answers, spec.name: value}
        if not errors:
            db.session.commit()
            return redirect(_next_url(definition, specs, customer, step), 303)
        db.session.commit()
    return render_template(
        "portal/form_step.html", definition=definition, back=back,
        blocks=question_blocks([spec], values, errors, uploads, heading=True),
        errors=error_list(errors, [spec]), has_errors=bool(errors), multipart=spec.type == "file",
    ), 400 if errors else 200


def _check_answers(definition, specs, customer):
    draft = current_draft(definition)
    missing = _first_missing(specs, customer, draft)
    if missing:
        return redirect(url_for(".form_step", slug=definition.slug, step=missing), 303)
    answers = dict(draft.answers)
    uploads = draft_uploads(draft)
    if request.method == "POST":
        resident = ResidentDetails(**answers["_resident"]) if customer is None else None
        chosen = {s.name: answers.get(s.name) for s in specs if s.type != "file"}
        return _finish(Submission(definition, chosen, resident, customer, uploads, photo_location(draft)))
    rows = []
    for spec in specs:
        if spec.type == "file":
            shown = uploads[spec.name].filename if spec.name in uploads else "Not sent"
        else:
            shown = display_value(spec, answers.get(spec.name)) or "Not answered"
        rows.append({"key": spec.label, "value": shown,
                     "href": url_for(".form_step", slug=definition.slug, step=spec.name, change=1)})
    if customer is None:
        person = answers["_resident"]
        shown = "\n".join(v for v in (person.get("name"), person.get("email"), person.get("phone")) if v)
        rows.append({"key": "Your details", "value": shown,
                     "href": url_for(".form_step", slug=definition.slug, step=DETAILS_STEP, change=1)})
    return render_template("portal/check_answers.html", definition=definition, rows=rows,
                           back=_back_url(definition, specs, customer, CHECK_STEP),
                           category=category_name(definition))
