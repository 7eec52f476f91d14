"""Forms of the case pages and the routing-rule admin."""
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField, DecimalField, HiddenField, IntegerField, RadioField, SelectField, StringField, SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..labels import LABELS
from ..models import PRIORITIES
from .lifecycle import STATUS_LABELS

PRIORITY_CHOICES = [(p, p.title()) for p in PRIORITIES]


class StatusForm(FlaskForm):
    # Choices are checked by the lifecycle, which explains a refusal better than "not a valid choice".
    status = SelectField("Move to", validators=[DataRequired()], validate_choice=False)
    reason = TextAreaField("Reason", id="status-reason", validators=[Optional(), Length(max=2000)])
    submit = SubmitField("Change status")

    def validate(self, extra_validators=None):
        """Check the fields, then ask how the case was resolved: the resident is told it."""
        valid = super().validate(extra_validators)
        if self.status.data == "resolved" and not (self.reason.data or "").strip():
            self.reason.errors = list(self.reason.errors) + ["Say how the case was resolved: the resident sees this"]
            return False
        return valid


class AssignForm(FlaskForm):
    assignee_id = SelectField("Assign to", coerce=int, validate_choice=False)
    submit = SubmitField("Assign")


class RerouteForm(FlaskForm):
    service = SelectField("Send to service", validators=[DataRequired()], validate_choice=False)
    reason = StringField("Why", validators=[DataRequired(), Length(max=2000)])
    submit = SubmitField("Re-route")


class NoteForm(FlaskForm):
    body = TextAreaField("Internal note (staff only, never shown to the resident)", id="note-body",
                         validators=[DataRequired(), Length(max=20000)])
    submit = SubmitField("Add note")


class PublicUpdateForm(FlaskForm):
    body = TextAreaField("Public update (the resident sees this and is emailed)", id="update-body",
                         validators=[DataRequired(), Length(max=20000)])
    confirmed = HiddenField()
    submit = SubmitField("Post update")


class MergeCaseForm(FlaskForm):
    into = StringField("Reference of the case to keep", validators=[DataRequired(), Length(max=20)])
    reason = StringField("Why they are duplicates", validators=[Optional(), Length(max=2000)])
    submit = SubmitField("Merge into that case")


class SplitForm(FlaskForm):
    contact_id = HiddenField(validators=[DataRequired()])
    submit = SubmitField("Split into a new case")


class NewCaseForm(FlaskForm):
    category = SelectField("Category", validators=[DataRequired()])
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=20000)])
    priority = SelectField("Priority", choices=[("", "As the routing rule says")] + PRIORITY_CHOICES,
                           validators=[Optional()])
    # "address-<id>" for one of the caller's addresses, "other" for a street or postcode typed in, "" for none.
    where = RadioField("Where is the problem?", choices=[], validate_choice=False, default="other")
    location_address = StringField("Street, landmark or postcode", validators=[Optional(), Length(max=300)])
    latitude = DecimalField("Latitude", places=None, validators=[Optional(), NumberRange(-90, 90)])
    longitude = DecimalField("Longitude", places=None, validators=[Optional(), NumberRange(-180, 180)])
    raise_anyway = BooleanField("None of these is the same problem: raise a new case")
    submit = SubmitField("Raise case")


class AttachForm(FlaskForm):
    reference = HiddenField(validators=[DataRequired()])
    category = HiddenField()
    notes = HiddenField()
    submit = SubmitField("Add this caller to the case")


class RoutingRuleForm(FlaskForm):
    position = IntegerField("Position (lowest first)", default=100, validators=[NumberRange(0, 100000)])
    category_code = SelectField("Category", validators=[DataRequired()])
    keywords = StringField("Keywords (comma separated, optional)", validators=[Optional(), Length(max=500)])
    service_id = SelectField("Service", coerce=int)
    queue_id = SelectField("Queue", coerce=int)
    priority = SelectField("Priority", choices=PRIORITY_CHOICES, default="normal")
    sla_hours = IntegerField("SLA (working hours, blank for the service's)",
                             validators=[Optional(), NumberRange(1, 10000)])
    active = BooleanField("Active", default=True)
    submit = SubmitField("Save rule")


class DeleteForm(FlaskForm):
    submit = SubmitField("Delete")


STATUS_CHOICES = [("", "Any open")] + list(LABELS["case_status"].items())
