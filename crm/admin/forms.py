"""Forms for managing staff."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, IntegerField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..models import ROLES

ROLE_CHOICES = [(r, r.replace("_", " ").title()) for r in ROLES]


class NewUserForm(FlaskForm):
    email = EmailField("Email address", validators=[DataRequired(), Length(max=254)])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    password = PasswordField("Initial password (10 characters or more)", validators=[DataRequired(), Length(max=200)])
    submit = SubmitField("Create user")


class EditUserForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    role = SelectField("Role", choices=ROLE_CHOICES)
    service_id = SelectField("Service (service officers)", coerce=int)
    chat_capacity = IntegerField("Chat capacity", validators=[NumberRange(min=0, max=20)])
    active = BooleanField("Account active")
    new_password = PasswordField("Set a new password", validators=[Optional(), Length(max=200)])
    submit = SubmitField("Save changes")


class TokenForm(FlaskForm):
    label = StringField("Token label", validators=[Optional(), Length(max=100)])
    submit = SubmitField("Create API token")


class RevokeForm(FlaskForm):
    submit = SubmitField("Revoke")
