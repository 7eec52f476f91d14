"""Console forms of the email channel."""
from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ...labels import LABELS
from ...models import OUTCOMES

# The outcome starts empty: an untouched form must not count as resolved at first contact.
OUTCOME_CHOICES = [("", "Choose the outcome")] + [(o, LABELS["outcome"][o]) for o in OUTCOMES if o != "pending"]


class ReplyForm(FlaskForm):
    body = TextAreaField("Reply to the resident", validators=[DataRequired(), Length(max=20000)])
    attachments = MultipleFileField("Attach files (optional)")
    # Only read by "Send and resolve" on a conversation without a case.
    outcome = SelectField("Outcome if you send and resolve", choices=OUTCOME_CHOICES, default="",
                          id="reply-outcome", validators=[Optional()])


class NoteForm(FlaskForm):
    body = TextAreaField("Internal note (never sent)", id="note-body", validators=[DataRequired(), Length(max=20000)])


class AssignForm(FlaskForm):
    assignee = SelectField("Assign to", choices=[])


class ResolveForm(FlaskForm):
    outcome = SelectField("Outcome", choices=OUTCOME_CHOICES, default="", validators=[Optional()])
    # With a linked case: its next step ("" leaves it where it is) and, when resolving it, why.
    case_status = SelectField("Next step for the case", choices=[], validate_choice=False, default="")
    case_reason = TextAreaField("How the case was resolved (the resident is told)", id="case-reason",
                                validators=[Optional(), Length(max=2000)])
    case_note = TextAreaField("Note for the case officer (optional, staff only)", id="case-note",
                              validators=[Optional(), Length(max=20000)])


class ActionForm(FlaskForm):
    """A button that posts: only the CSRF token to check."""
