"""Admin pages to manage staff users and tokens."""
from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_user
from sqlalchemy import select

from ..auth.access import roles_required
from ..auth.accounts import create_token, create_user, revoke_token, update_user
from ..auth.roles import ADMIN, ADMINS
from ..extensions import db
from ..models import ApiToken, AuditLog, Service, User
from . import bp
from ..web import act
from .forms import EditUserForm, NewUserForm, RevokeForm, TokenForm


@bp.route("/users", methods=["GET", "POST"])
@roles_required(*ADMINS)
def users():
    """List staff and add a new user."""
    form = NewUserForm()
    if form.validate_on_submit():
        def refused(error):
            for field, messages in error.fields.items():
                if field in form:
                    form[field].errors = list(form[field].errors) + list(messages)
            return _render_users(form, error.status)

        return act(lambda: create_user(form.email.data, form.name.data, form.role.data, form.password.data,
                                       actor=current_user),
                   lambda made: f"User {made.email} created.",
                   lambda _: redirect(url_for("admin.users")), refused)
    return _render_users(form, 400 if form.errors else 200)


def _render_users(form, status: int):
    all_users = db.session.scalars(select(User).order_by(User.name)).all()
    return render_template("admin/users.html", users=all_users, form=form), status


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@roles_required(*ADMINS)
def user(user_id):
    """Edit a user's role, service, capacity, status or password; manage their tokens."""
    record = db.get_or_404(User, user_id)
    form = _edit_form(record)
    if form.validate_on_submit():
        if record.id == current_user.id and (form.role.data != ADMIN or not form.active.data):
            flash("You cannot remove your own admin role or deactivate yourself.", "error")
            return redirect(url_for("admin.user", user_id=record.id))

        def saved(_):
            if record.id == current_user.id:
                login_user(record)  # a new password ends the admin's other sessions, not this one
            return redirect(url_for("admin.user", user_id=record.id))

        def refused(error):
            form.new_password.errors = list(error.fields.get("password", [error.message]))
            return _render_user(record, form, 400)

        return act(lambda: update_user(record, name=form.name.data, role=form.role.data,
                                       service_id=form.service_id.data, chat_capacity=form.chat_capacity.data,
                                       active=form.active.data, new_password=form.new_password.data,
                                       actor=current_user),
                   "Changes saved.", saved, refused)
    if form.is_submitted() and form.errors:
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
@roles_required(*ADMINS)
def new_token(user_id):
    """Issue an API token for a user; it is shown once."""
    record = db.get_or_404(User, user_id)
    form = TokenForm()
    if not form.validate_on_submit():
        abort(400)
    secret = create_token(record, form.label.data or None, actor=current_user)
    db.session.commit()
    return _render_user(record, _edit_form(record, formdata=None), new_token=secret)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@roles_required(*ADMINS)
def revoke(token_id):
    """Revoke an API token."""
    token = db.get_or_404(ApiToken, token_id)
    if not RevokeForm().validate_on_submit():
        abort(400)
    revoke_token(token, actor=current_user)
    db.session.commit()
    flash(f"Token {token.prefix}… revoked.", "success")
    return redirect(url_for("admin.user", user_id=token.user_id))
