"""/track: a case's public progress for whoever gives its reference and the email or phone on it."""
import re
import time

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select

from ..cases.lifecycle import OPEN_STATUSES, STATUS_LABELS, can_reopen, reopen_window
from ..cases.service import reopen_case
from ..customers.identity import normalise_email, try_normalise_phone
from ..channels.web_form import clean_text
from ..customers.timeline import record_contact
from ..extensions import db, limiter
from ..models import Case, CustomerIdentity
from . import bp
from .accounts import account_customer, current_resident, public_events
from .settings import DEFAULTS

TRACKED_KEY = "tracked_cases"
TRACK_FOR_SECONDS = 60 * 60
MAX_TRACKED = 10
REFERENCE_LENGTH = 20
NEXT_STEPS = {
    "new": "We will check your report and pass it to the team that deals with it.",
    "open": "The team has your report and will start work on it.",
    "in_progress": "The team is working on it.",
    "awaiting_customer": "We need something from you: check your email or phone us, quoting your reference.",
    "resolved": "We think this is sorted. If it is not, tell us below.",
    "closed": "This is finished. If the problem is back, please report it again.",
}
MERGED_NEXT_STEP = ("Someone else reported the same problem, so we are dealing with both reports together. "
                    "The status shown is theirs and ours.")
EVENT_LABELS = {
    "created": "We received your report",
    "merged": "Joined with another report of the same problem: we will deal with them together",
    "reopened": "You told us this is not fixed: we have reopened it",
    "public_update": "Update from the team",
}


def track_ip_limit() -> str:
    """Lookups allowed per address (config PORTAL_TRACK_LIMIT)."""
    return current_app.config.get("PORTAL_TRACK_LIMIT", DEFAULTS["PORTAL_TRACK_LIMIT"])


def track_reference_limit() -> str:
    """Failed lookups allowed per reference, from anywhere (config PORTAL_TRACK_REFERENCE_LIMIT)."""
    return current_app.config.get("PORTAL_TRACK_REFERENCE_LIMIT", DEFAULTS["PORTAL_TRACK_REFERENCE_LIMIT"])


SHORT_REFERENCE = re.compile(r"^(CAS)[\s\-_./#:]*0*(\d{1,9})$")


def clean_reference(raw) -> str:
    """Return a typed reference in its stored form: CAS000173, cas 173 and CAS-173 are all CAS-000173."""
    typed = (raw or "").upper()[:100].strip()
    short = SHORT_REFERENCE.match(typed)
    if short:
        return f"{short.group(1)}-{int(short.group(2)):06d}"
    return re.sub(r"[^A-Z0-9-]", "", typed)[:REFERENCE_LENGTH]


def _reference_from_form() -> str:
    return clean_reference(request.form.get("reference"))


def _reference_key() -> str:
    return "track-reference:" + _reference_from_form()


def contact_values(raw: str) -> set[str]:
    """Return the normalised identity values a typed email or phone could be."""
    raw = (raw or "").strip()[:254]
    values = set()
    if "@" in raw:
        try:
            values.add(normalise_email(raw))
        except Exception:  # noqa: BLE001 - anything unreadable simply matches nothing
            pass
    else:
        phone = try_normalise_phone(raw)
        if phone:
            values.add(phone)
    return values


def find_tracked_case(reference: str, contact: str):
    """Return the case when the email or phone is on it, else None (the same answer for every miss)."""
    case = db.session.scalar(select(Case).where(Case.reference == reference))
    wanted = contact_values(contact)
    if case is None or not wanted:
        return None
    held = set(db.session.scalars(select(CustomerIdentity.value).where(
        CustomerIdentity.customer_id == case.customer_id, CustomerIdentity.kind.in_(("email", "phone")))).all())
    return case if held & wanted else None


def _remember(case: Case) -> None:
    now = int(time.time())
    kept = [[cid, at] for cid, at in (session.get(TRACKED_KEY) or []) if now - at < TRACK_FOR_SECONDS and cid != case.id]
    session[TRACKED_KEY] = (kept + [[case.id, now]])[-MAX_TRACKED:]


def may_see(case: Case) -> bool:
    """Say whether this browser proved it may see the case (tracked it, or owns it when signed in)."""
    now = int(time.time())
    for cid, at in session.get(TRACKED_KEY) or []:
        if cid == case.id and now - at < TRACK_FOR_SECONDS:
            return True
    customer = account_customer(current_resident())
    return customer is not None and customer.id == case.customer_id


@bp.route("/track", methods=["GET", "POST"])
@limiter.limit(track_ip_limit, methods=["POST"])
@limiter.limit(track_reference_limit, methods=["POST"], key_func=_reference_key,
               deduct_when=lambda response: response.status_code == 404)
def track():
    """Ask for a reference and the email or phone on it; show the case when they match."""
    values = {"reference": clean_reference(request.values.get("reference")),
              "contact": clean_text(request.form.get("contact"))[:254]}
    errors = {}
    if request.method == "POST":
        reference = _reference_from_form()
        if not reference:
            errors["reference"] = "Enter your reference, like CAS-000123"
        if not values["contact"]:
            errors["contact"] = "Enter the email address or phone number you gave us"
        if not errors:
            case = find_tracked_case(reference, values["contact"])
            if case is not None:
                _remember(case)
                return redirect(url_for(".track_case", reference=case.reference), 303)
            return render_template("portal/track.html", values=values, errors=[], not_found=True), 404
    summary = [{"text": message, "href": f"#{name}"} for name, message in errors.items()]
    return render_template("portal/track.html", values=values, errors=summary, field_errors=errors,
                           has_errors=bool(errors)), 400 if errors else 200


def progress_context(case: Case) -> dict:
    """Return what the resident sees of a case: status, next step, expected date, public history."""
    history = []
    for event in public_events(case):
        if event.kind == "status_changed":
            label = f"Status changed to {STATUS_LABELS.get(event.to_value, event.to_value).lower()}"
            body = event.body if event.public else None  # a resolution's reason is for the resident
        elif event.kind == "merged":
            label, body = EVENT_LABELS["merged"], None  # the other report is someone else's
        else:
            label = EVENT_LABELS.get(event.kind, event.kind.replace("_", " ").capitalize())
            body = event.body if event.public or event.kind == "reopened" else None
        history.append({"at": event.occurred_at, "label": label, "body": body, "update": event.kind == "public_update"})
    history.reverse()
    # A duplicate folded into another report follows that report's status and date, not its details.
    leading = db.session.get(Case, case.merged_into_id) if case.merged_into_id else case
    return {
        "case": case,
        "status_label": STATUS_LABELS.get(leading.status, leading.status),
        "next_step": MERGED_NEXT_STEP if leading is not case else NEXT_STEPS.get(case.status, ""),
        "expected": leading.sla_due_at if leading.status in OPEN_STATUSES else None,
        "history": history,
        "reopenable": can_reopen(case),
        "reopen_days": reopen_window().days,
    }


def _case_or_redirect(reference: str):
    case = db.session.scalar(select(Case).where(Case.reference == clean_reference(reference)))
    if case is None or not may_see(case):
        return None
    return case


@bp.get("/track/<reference>")
def track_case(reference):
    """Show a case's public progress to a browser that proved it may see it."""
    case = _case_or_redirect(reference)
    if case is None:
        return redirect(url_for(".track", reference=clean_reference(reference)))
    return render_template("portal/track_case.html", **progress_context(case),
                           reopen_url=url_for(".reopen", reference=case.reference))


@bp.post("/track/<reference>/reopen")
@limiter.limit(track_ip_limit)
def reopen(reference):
    """'This is not fixed': reopen a resolved case within its window, with the resident's reason."""
    case = _case_or_redirect(reference)
    if case is None:
        abort(404)
    in_account = request.form.get("back") == "account"
    reason = clean_text(request.form.get("reason"))
    error = None
    if not reason:
        error = "Tell us what is still wrong"
    elif len(reason) > 2000:
        error = "Your answer must be 2,000 characters or fewer"
    if error:
        return render_template("portal/track_case.html", **progress_context(case), in_account=in_account,
                               reopen_error=error, reason=reason[:2000], has_errors=True,
                               reopen_url=url_for(".reopen", reference=case.reference)), 400
    reopen_case(case, None, reason)
    record_contact(case.customer, "web_form", summary=f"Resident says {case.reference} is not fixed",
                   category=case.category, outcome="pending", case=case)
    db.session.commit()
    flash(f"We have reopened {case.reference} and told the team.", "success")
    if in_account:
        return redirect(url_for(".account_case_view", reference=case.reference), 303)
    return redirect(url_for(".track_case", reference=case.reference), 303)
