"""Admin editor for web-form definitions: questions as JSON, checked before they are saved."""
import json
import re

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..audit import audit
from ..auth.access import roles_required
from ..auth.roles import ADMINS
from ..channels.web_form import parse_fields
from ..errors import ValidationFailed
from ..extensions import db
from ..models import Category, FormDefinition, Service
from . import staff_bp

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
EXAMPLE_FIELDS = [
    {"name": "location", "label": "Where is the problem?", "type": "text", "required": True, "location": True,
     "hint": "Street name and nearest house number or landmark"},
    {"name": "photo", "label": "Add a photo (optional)", "type": "file"},
]


class FormDefinitionForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    slug = StringField("Web address (slug)", validators=[DataRequired(), Length(max=80)],
                       description="Lower-case words joined by hyphens: /forms/report-a-pothole")
    description = TextAreaField("Introduction", validators=[Optional(), Length(max=2000)])
    category = SelectField("Category it raises (and so the service)", validators=[DataRequired()])
    fields_json = TextAreaField("Questions (JSON)", validators=[DataRequired(), Length(max=50000)])
    next_steps = TextAreaField("What happens next", validators=[Optional(), Length(max=2000)])
    one_question_per_page = BooleanField("One question per page, then check answers")
    published = BooleanField("Published on /forms/")
    submit = SubmitField("Save form")


def _category_choices():
    rows = db.session.execute(select(Category.code, Category.name, Service.name).join(Service)
                              .where(Category.active.is_(True)).order_by(Service.name, Category.name)).all()
    return [(code, f"{service} – {name}") for code, name, service in rows]


@staff_bp.get("/admin/forms")
@roles_required(*ADMINS)
def form_definitions():
    """List every form definition."""
    definitions = db.session.scalars(select(FormDefinition).order_by(FormDefinition.title)).all()
    return render_template("portal/staff_forms.html", definitions=definitions)


@staff_bp.route("/admin/forms/new", methods=["GET", "POST"])
@staff_bp.route("/admin/forms/<int:form_id>", methods=["GET", "POST"])
@roles_required(*ADMINS)
def edit_form_definition(form_id=None):
    """Create or edit a form definition; the questions are checked before saving."""
    definition = db.session.get(FormDefinition, form_id) if form_id else None
    if form_id and definition is None:
        abort(404)
    form = FormDefinitionForm(obj=definition)
    form.category.choices = _category_choices()
    if not form.is_submitted():
        if definition is not None:
            form.category.data = definition.category_code
            form.fields_json.data = json.dumps(definition.fields, indent=2, ensure_ascii=False)
        else:
            form.fields_json.data = json.dumps(EXAMPLE_FIELDS, indent=2)
            form.published.data = False
    if form.validate_on_submit():
        fields = _checked_fields(form)
        slug = form.slug.data.strip().lower()
        if not SLUG_RE.match(slug):
            form.slug.errors.append("Use lower-case letters, digits and single hyphens")
        elif db.session.scalar(select(FormDefinition).where(FormDefinition.slug == slug,
                                                            FormDefinition.id != (form_id or 0))):
            form.slug.errors.append("Another form already uses this address")
        category = db.session.scalar(select(Category).where(Category.code == form.category.data))
        if fields is not None and not form.slug.errors and category is not None:
            if definition is None:
                definition = FormDefinition(fields=[])
                db.session.add(definition)
            definition.title = form.title.data.strip()
            definition.slug = slug
            definition.description = (form.description.data or "").strip() or None
            definition.service_id = category.service_id
            definition.category_code = category.code
            definition.fields = fields
            definition.next_steps = (form.next_steps.data or "").strip() or None
            definition.one_question_per_page = form.one_question_per_page.data
            definition.published = form.published.data
            db.session.flush()
            audit(current_user, "form.update" if form_id else "form.create", "form_definition", definition.id,
                  slug=slug, published=definition.published)
            db.session.commit()
            flash(f"Form {definition.title} saved.", "success")
            return redirect(url_for("form_staff.edit_form_definition", form_id=definition.id), 303)
    status = 400 if form.is_submitted() and (form.errors or any(f.errors for f in form)) else 200
    return render_template("portal/staff_form_edit.html", form=form, definition=definition), status


def _checked_fields(form):
    """Read the questions JSON, putting any problem on the form; return the list or None."""
    try:
        raw = json.loads(form.fields_json.data)
    except ValueError as error:
        form.fields_json.errors.append(f"Not valid JSON: {error}")
        return None
    try:
        parse_fields(raw)
    except ValidationFailed as refused:
        form.fields_json.errors.extend(refused.fields.get("fields", [refused.message]))
        return None
    if not raw:
        form.fields_json.errors.append("Add at least one question")
        return None
    return raw
