"""Forms of the agent console."""
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField, EmailField, HiddenField, IntegerField, SelectField, StringField, SubmitField,
    TelField, TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, NumberRange

from ..models import OUTCOMES, PRIORITIES

OUTCOME_LABELS = {
    "resolved_first_time": "Resolved at first contact",
    "case_raised": "Case raised",
    "signposted": "Signposted",
    "transferred": "Transferred",
    "abandoned": "Abandoned / call dropped",
    "pending": "Pending (follow-up needed)",
}


class CustomerForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email address", validators=[Optional(), Length(max=254)])
    phone = TelField("Phone number", validators=[Optional(), Length(max=40)])
    line1 = StringField("Address line 1", validators=[Optional(), Length(max=200)])
    line2 = StringField("Address line 2", validators=[Optional(), Length(max=200)])
    town = StringField("Town", validators=[Optional(), Length(max=100)])
    postcode = StringField("Postcode", validators=[Optional(), Length(max=12)])
    submit = SubmitField("Save caller")


class CallForm(FlaskForm):
    started_at = HiddenField()
    ended_at = HiddenField()
    direction = SelectField("Direction", choices=[("inbound", "Inbound call"), ("outbound", "Outbound call")])
    # Both start empty and must be chosen: a default would count untouched calls as resolved first time.
    category = SelectField("Reason for call", validators=[DataRequired("Choose the reason for the call")])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=20000)])
    outcome = SelectField("Outcome", choices=[("", "Choose the outcome")] + [(o, OUTCOME_LABELS[o]) for o in OUTCOMES],
                          validators=[DataRequired("Choose the outcome of the call")], default="")
    raise_case = BooleanField("Raise a case for the service")
    case_title = StringField("Case title", validators=[Optional(), Length(max=200)])
    case_description = TextAreaField("Case description", validators=[Optional(), Length(max=20000)])
    case_priority = SelectField("Priority", choices=[(p, p.title()) for p in PRIORITIES], default="normal")
    submit = SubmitField("Log call")


class MergeForm(FlaskForm):
    source_id = IntegerField("Customer number to merge into this one",
                             validators=[DataRequired(), NumberRange(min=1)])
    keep_name = SelectField("Name to keep", choices=[("target", "This customer's name"),
                                                      ("source", "The other customer's name")])
    submit = SubmitField("Merge customers")


class SensitivityForm(FlaskForm):
    vulnerability_notes = TextAreaField("Vulnerability notes", validators=[Optional(), Length(max=5000)])
    restricted = BooleanField("Restricted record: only staff who need it may read it")
    submit = SubmitField("Save")
