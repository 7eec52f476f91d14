"""Sign in and out of the staff console."""
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..audit import audit
from ..extensions import db, limiter
from . import bp
from .accounts import authenticate
from .forms import LoginForm


def _safe_next(target):
    """Only follow a same-site relative next= link."""
    if not target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") else None


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login():
    """Show the sign-in form and sign staff in."""
    if current_user.is_authenticated:
        return redirect(url_for("console.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is None:
            db.session.commit()  # keep the failure count
            flash("Email or password not recognised, or the account is locked for a while.", "error")
            return render_template("auth/login.html", form=form), 401
        login_user(user)
        audit(user, "user.login", "user", user.id, ip=request.remote_addr)
        db.session.commit()
        return redirect(_safe_next(request.args.get("next")) or url_for("console.home"))
    return render_template("auth/login.html", form=form), (400 if form.errors else 200)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Sign out (POST, so a link on another site cannot do it), ending every session of the user."""
    from .sessions import end_sessions

    end_sessions(current_user)
    audit(current_user, "user.logout", "user", current_user.id)
    db.session.commit()
    logout_user()
    return redirect(url_for("auth.login"))
