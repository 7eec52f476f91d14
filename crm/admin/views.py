"""Admin pages to manage staff users and tokens."""
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_user
from sqlalchemy import select

from ..audit import audit
from ..auth.access import roles_required
from ..auth.accounts import create_token, create_user, hash_password, revoke_token, validate_password
from ..errors import DomainError
from ..extensions import db
from ..models import ApiToken, AuditLog, Service, User
from . import bp
from .forms import EditUserForm, NewUserForm, RevokeForm, TokenForm


def _user_or_404(user_id):
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users", methods=["GET", "POST"])
@roles_required("admin")
def users():
    """List staff and add a new user."""
    form = NewUserForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = create_user(form.email.data, form.name.data, form.role.data, form.password.data,
                               actor=current_user)
            db.session.commit()
            flash(f"User {user.email} created.", "success")
            return redirect(url_for("admin.users"))
        except DomainError as error:
            db.session.rollback()
            for field, messages in error.fields.items():
                if field in form:
                    form[field].errors = list(form[field].errors) + list(messages)
            flash(error.message, "error")
            status = error.status
    elif form.errors:
        status = 400
    all_users = db.session.scalars(select(User).order_by(User.name)).all()
    return render_template("admin/users.html", users=all_users, form=form), status


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@roles_required("admin")
def user(user_id):
    """Edit a user's role, service, capacity, status or password; manage their tokens."""
    record = _user_or_404(user_id)
    form = _edit_form(record)
    if form.validate_on_submit():
        if record.id == current_user.id and (form.role.data != "admin" or not form.active.data):
            flash("You cannot remove your own admin role or deactivate yourself.", "error")
            return redirect(url_for("admin.user", user_id=record.id))
        try:
            if form.new_password.data:
                validate_password(form.new_password.data)
                record.password_hash = hash_password(form.new_password.data)
                record.failed_logins, record.locked_until = 0, None
        except DomainError as error:
            form.new_password.errors = list(error.fields.get("password", [error.message]))
            return _render_user(record, form, 400)
        changes = {k: getattr(form, k).data for k in ("name", "role", "chat_capacity", "active")
                   if getattr(record, k) != getattr(form, k).data}
        record.name = form.name.data
        record.role = form.role.data
        record.service_id = form.service_id.data or None
        record.chat_capacity = form.chat_capacity.data
        record.active = form.active.data
        audit(current_user, "user.update", "user", record.id,
              password_changed=bool(form.new_password.data), **{k: str(v) for k, v in changes.items()})
        db.session.commit()
        if record.id == current_user.id:
            login_user(record)  # a new password ends the admin's other sessions, not this one
        flash("Changes saved.", "success")
        return redirect(url_for("admin.user", user_id=record.id))
    if request_is_post_with_errors(form):
        return _render_user(record, form, 400)
    return _render_user(record, form)


def _edit_form(record, **kwargs):
    """Return the edit form for a user, with the services to choose from."""
    form = EditUserForm(obj=record, **kwargs)
    services = db.session.scalars(select(Service).order_by(Service.name)).all()
    form.service_id.choices = [(0, "None")] + [(s.id, s.name) for s in services]
    if not form.is_submitted() or kwargs.get("formdata", True) is None:
        form.service_id.data = record.service_id or 0
    return form


def request_is_post_with_errors(form):
    return form.is_submitted() and bool(form.errors)


def _render_user(record, form, status=200, new_token=None):
    tokens = db.session.scalars(select(ApiToken).where(ApiToken.user_id == record.id)
                                .order_by(ApiToken.created_at.desc())).all()
    history = db.session.scalars(select(AuditLog).where(AuditLog.target_type == "user",
                                                        AuditLog.target_id == str(record.id))
                                 .order_by(AuditLog.id.desc()).limit(20)).all()
    return render_template("admin/user.html", record=record, form=form, tokens=tokens,
                           token_form=TokenForm(), revoke_form=RevokeForm(), new_token=new_token,
                           history=history), status


@bp.route("/users/<int:user_id>/tokens", methods=["POST"])
@roles_required("admin")
def new_token(user_id):
    """Issue an API token for a user; it is shown once."""
    record = _user_or_404(user_id)
    form = TokenForm()
    if not form.validate_on_submit():
        abort(400)
    secret = create_token(record, form.label.data or None, actor=current_user)
    db.session.commit()
    return _render_user(record, _edit_form(record, formdata=None), new_token=secret)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@roles_required("admin")
def revoke(token_id):
    """Revoke an API token."""
    token = db.session.get(ApiToken, token_id)
    if token is None:
        abort(404)
    if not RevokeForm().validate_on_submit():
        abort(400)
    revoke_token(token, actor=current_user)
    db.session.commit()
    flash(f"Token {token.prefix}… revoked.", "success")
    return redirect(url_for("admin.user", user_id=token.user_id))
