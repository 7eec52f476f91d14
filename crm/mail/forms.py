"""Console forms of the email channel."""
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..models import OUTCOMES

OUTCOME_CHOICES = [(o, o.replace("_", " ").capitalize()) for o in OUTCOMES if o != "pending"]


class ReplyForm(FlaskForm):
    body = TextAreaField("Reply to the resident", validators=[DataRequired(), Length(max=20000)])


class NoteForm(FlaskForm):
    body = TextAreaField("Internal note (never sent)", validators=[DataRequired(), Length(max=20000)])


class AssignForm(FlaskForm):
    assignee = SelectField("Assign to", choices=[])


class ResolveForm(FlaskForm):
    outcome = SelectField("Outcome", choices=OUTCOME_CHOICES, default="resolved_first_time")


class ActionForm(FlaskForm):
    """A button that posts: only the CSRF token to check."""
