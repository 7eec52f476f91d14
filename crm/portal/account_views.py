"""/account: residents sign up, sign in (password or one-time link), see their cases and their data."""
import json
from functools import wraps

from flask import Response, current_app, flash, redirect, render_template, request, url_for

from ..channels.web_form import clean_text
from ..errors import ValidationFailed
from ..extensions import db, limiter
from . import bp
from .accounts import (
    PREFERRED_CHANNELS, account_case, account_cases, account_customer, authenticate, contact_summary,
    current_resident, export_data, find_account, issue_sign_in_link, peek_sign_in_link, redeem_sign_in_link,
    sign_in, sign_out, sign_up, update_preferences,
)
from .mail import send_sign_in_link
from .settings import DEFAULTS
from .track import progress_context

CHANNEL_LABELS = {"phone": "Phone calls", "email": "Emails", "webchat": "Web chats", "web_form": "Online forms",
                  "open311": "Reports from apps", "face_to_face": "Visits", "letter": "Letters"}


def sign_in_limit() -> str:
    """Sign-in attempts allowed per address (config PORTAL_SIGN_IN_LIMIT)."""
    return current_app.config.get("PORTAL_SIGN_IN_LIMIT", DEFAULTS["PORTAL_SIGN_IN_LIMIT"])


def link_limit() -> str:
    """Sign-in link and sign-up emails allowed per address (config PORTAL_LINK_LIMIT)."""
    return current_app.config.get("PORTAL_LINK_LIMIT", DEFAULTS["PORTAL_LINK_LIMIT"])


def resident_required(view):
    """Send residents who are not signed in to the sign-in page."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_resident() is None or account_customer(current_resident()) is None:
            return redirect(url_for(".account"))
        return view(*args, **kwargs)
    return wrapped


def _email_link(account, already_registered=False) -> None:
    from ..security import public_url, resident_mail_allowed

    # Over the limit the page says the same as ever: nobody learns of it, and nobody is flooded.
    if resident_mail_allowed(account.email, "sign-in link"):
        secret = issue_sign_in_link(account)
        # The configured address, not the Host header: a forged Host must not put the secret in a link elsewhere.
        send_sign_in_link(account, public_url("portal.sign_in_link", secret=secret), already_registered)
    db.session.commit()


def _sign_in_page(errors=None, values=None, status=200, link_errors=None):
    errors, link_errors = errors or {}, link_errors or {}
    summary = [{"text": m, "href": f"#{n}"} for n, m in {**errors, **link_errors}.items()]
    return render_template("portal/account_sign_in.html", errors=summary, field_errors=errors,
                           link_errors=link_errors, values=values or {}, has_errors=bool(summary)), status


@bp.get("/account")
def account():
    """The resident's cases and contacts when signed in; otherwise the sign-in page."""
    resident = current_resident()
    customer = account_customer(resident)
    if resident is None or customer is None:
        return _sign_in_page()
    cases = account_cases(resident)
    summary = contact_summary(customer)
    return render_template("portal/account_home.html", resident=resident, customer=customer, cases=cases,
                           summary=summary, channel_labels=CHANNEL_LABELS,
                           status_label=lambda c: progress_context(c)["status_label"])


@bp.post("/account/sign-in")
@limiter.limit(sign_in_limit)
def sign_in_password():
    """Sign in with email and password."""
    email = clean_text(request.form.get("email"))[:254]
    password = request.form.get("password") or ""
    errors = {}
    if not email:
        errors["email"] = "Enter your email address"
    if not password:
        errors["password"] = "Enter your password"
    if errors:
        return _sign_in_page(errors, {"email": email}, 400)
    found = authenticate(email, password[:200])
    if found is None:
        db.session.commit()  # keep the failure count
        return _sign_in_page({"email": "Email address or password not recognised, or the account is locked for "
                                       "15 minutes after too many tries"}, {"email": email}, 401)
    if found.email_verified_at is None:
        _email_link(found)
        return render_template("portal/account_check_email.html", confirming=True)
    sign_in(found)
    db.session.commit()
    return redirect(url_for(".account"), 303)


@bp.post("/account/sign-in-link")
@limiter.limit(link_limit)
def request_sign_in_link():
    """Email a one-time sign-in link; the answer is the same whether or not there is an account."""
    email = clean_text(request.form.get("link_email"))[:254]
    if not email or "@" not in email:
        return _sign_in_page(link_errors={"link_email": "Enter your email address, like name@example.com"},
                             values={"link_email": email}, status=400)
    found = find_account(email)
    if found is not None:
        _email_link(found)
    return render_template("portal/account_check_email.html")


@bp.route("/account/sign-up", methods=["GET", "POST"])
@limiter.limit(link_limit, methods=["POST"])
def account_sign_up():
    """Create an account; it shows cases once the emailed link proves the address."""
    values, errors = {}, {}
    if request.method == "POST":
        values = {k: clean_text(request.form.get(k))[:254] for k in ("name", "email")}
        password = request.form.get("password") or ""
        if not values["name"]:
            errors["name"] = "Enter your full name"
        if not values["email"]:
            errors["email"] = "Enter your email address"
        if not errors:
            try:
                made, created = sign_up(values["name"], values["email"], password or None)
            except ValidationFailed as refused:
                for name, messages in refused.fields.items():
                    errors[name] = messages[0]
                if not refused.fields:
                    errors["email"] = "Enter an email address in the correct format, like name@example.com"
            else:
                db.session.commit()
                _email_link(made, already_registered=not created)
                return render_template("portal/account_check_email.html", confirming=True)
    summary = [{"text": m, "href": f"#{n}"} for n, m in errors.items()]
    return render_template("portal/account_sign_up.html", values=values, errors=summary, field_errors=errors,
                           has_errors=bool(errors)), 400 if errors else 200


@bp.route("/account/link/<secret>", methods=["GET", "POST"])
@limiter.limit(sign_in_limit, methods=["POST"])
def sign_in_link(secret):
    """Confirm and use a one-time link (a button, so mail scanners that fetch links do not use it up)."""
    if request.method == "GET":
        live = peek_sign_in_link(secret) is not None
        return render_template("portal/account_link.html", live=live), 200 if live else 404
    account_row = redeem_sign_in_link(secret)
    sign_in(account_row)
    db.session.commit()
    return redirect(url_for(".account"), 303)


@bp.post("/account/sign-out")
def sign_out_view():
    """Sign the resident out of this browser."""
    sign_out()
    flash("You have signed out.", "success")
    return redirect(url_for(".account"), 303)


@bp.get("/account/cases/<reference>")
@resident_required
def account_case_view(reference):
    """One of the resident's own cases; anyone else's is 'not found'."""
    case = account_case(current_resident(), reference)
    return render_template("portal/track_case.html", **progress_context(case), in_account=True,
                           reopen_url=url_for(".reopen", reference=case.reference))


@bp.route("/account/preferences", methods=["GET", "POST"])
@resident_required
def preferences():
    """Update how the council contacts the resident."""
    resident = current_resident()
    customer = account_customer(resident)
    if request.method == "POST":
        channel = request.form.get("preferred_channel") or None
        try:
            update_preferences(resident, request.form.get("email_updates") == "yes", channel)
        except ValidationFailed as refused:
            db.session.rollback()
            errors = {k: v[0] for k, v in refused.fields.items()}
            return render_template("portal/account_preferences.html", resident=resident, customer=customer,
                                   channels=PREFERRED_CHANNELS, field_errors=errors, has_errors=True,
                                   errors=[{"text": m, "href": f"#{n}"} for n, m in errors.items()]), 400
        db.session.commit()
        flash("Your contact preferences are saved.", "success")
        return redirect(url_for(".account"), 303)
    return render_template("portal/account_preferences.html", resident=resident, customer=customer,
                           channels=PREFERRED_CHANNELS, field_errors={}, errors=[])


@bp.get("/account/data.json")
@resident_required
def download_data():
    """Download everything the account holds about the resident, as JSON."""
    body = json.dumps(export_data(current_resident()), indent=2, ensure_ascii=False)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": 'attachment; filename="my-council-data.json"', "Cache-Control": "no-store"})
