"""The web-form channel: form definitions read as data, answers checked, a submission made a case.

A validated submission goes through the same few domain calls as every channel:
resolve_customer → record_contact(channel="web_form") → open_case. When an agent fills the
form for a caller (assisted digital) the contact is a phone contact by that agent instead.
"""
import logging
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Optional

from sqlalchemy import select

from ..cases.service import open_case
from ..customers.identity import (
    live_customer, normalise_email, normalise_phone, resolve_customer, set_case_contact,
)
from ..customers.timeline import record_contact
from ..errors import DomainError, ValidationFailed
from ..extensions import db
from ..models import Attachment, Category, FormDefinition, utcnow
from . import registry

log = logging.getLogger(__name__)


class WebFormChannel(registry.Channel):
    """Public forms: a resident submits, a case is raised; a form cannot send anything back to the resident.

    Its pages (the public forms, filling one for a caller, editing definitions) belong to crm.portal, which
    registers them.
    """

    name = "web_form"


channel = WebFormChannel()

FIELD_TYPES = ("text", "textarea", "email", "tel", "radios", "checkboxes", "select", "date", "file")
CHOICE_TYPES = ("radios", "checkboxes", "select")
MAX_LENGTH = {"text": 500, "textarea": 5000, "email": 254, "tel": 40}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Control characters (NUL above all: PostgreSQL refuses it in text) never belong in an answer.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Names the form itself uses for the resident's details and the upload options.
RESERVED_NAMES = {"name", "email", "phone", "csrf_token", "submit", "confirmation"}


@dataclass(frozen=True)
class FieldSpec:
    """One question of a form."""

    name: str
    label: str
    type: str
    required: bool = False
    hint: Optional[str] = None
    options: tuple = ()
    error: Optional[str] = None
    location: bool = False

    @property
    def keep_location_name(self) -> str:
        """The checkbox a file field offers: keep where the photo was taken."""
        return f"{self.name}_keep_location"

    def missing_message(self) -> str:
        """Return the error shown when a required answer is missing."""
        if self.error:
            return self.error
        question = self.label.rstrip("?").strip()
        if self.type == "file":
            return "Select a photo"
        if self.type in CHOICE_TYPES:
            return f"Select an answer to: {question}"
        if self.type == "date":
            return f"Enter a date for: {question}"
        return f"Enter an answer to: {question}"


def parse_fields(raw) -> list[FieldSpec]:
    """Read a form definition's fields, refusing what the renderer could not show."""
    if not isinstance(raw, list):
        raise ValidationFailed("Fields must be a list", {"fields": ["must be a JSON list of questions"]})
    problems: dict[str, list[str]] = {}
    specs, seen = [], set()
    for index, item in enumerate(raw):
        where = f"question {index + 1}"
        if not isinstance(item, dict):
            problems.setdefault("fields", []).append(f"{where}: must be an object")
            continue
        name = str(item.get("name", "")).strip()
        kind = item.get("type", "text")
        label = str(item.get("label", "")).strip()
        options = item.get("options") or []
        if not _NAME_RE.match(name):
            problems.setdefault("fields", []).append(
                f"{where}: name must be lower-case letters, digits or _ (starting with a letter)")
        elif name in RESERVED_NAMES or name in seen or name.endswith("_keep_location"):
            problems.setdefault("fields", []).append(f"{where}: the name {name!r} is taken")
        if kind not in FIELD_TYPES:
            problems.setdefault("fields", []).append(f"{where}: type must be one of {', '.join(FIELD_TYPES)}")
        if not label:
            problems.setdefault("fields", []).append(f"{where}: needs a label")
        if kind in CHOICE_TYPES:
            if not isinstance(options, list) or not options or not all(
                    isinstance(o, str) and o.strip() for o in options):
                problems.setdefault("fields", []).append(f"{where}: {kind} needs a list of options")
            elif len(set(options)) != len(options):
                problems.setdefault("fields", []).append(f"{where}: options must differ")
        seen.add(name)
        if "fields" not in problems:
            specs.append(FieldSpec(
                name=name, label=label[:300], type=kind, required=bool(item.get("required", False)),
                hint=(str(item["hint"]).strip()[:500] or None) if item.get("hint") else None,
                options=tuple(o.strip() for o in options) if kind in CHOICE_TYPES else (),
                error=(str(item["error"]).strip()[:200] or None) if item.get("error") else None,
                location=bool(item.get("location", False)) and kind in ("text", "textarea"),
            ))
    if problems:
        raise ValidationFailed("The form's questions are not valid", problems)
    return specs


def clean_text(raw) -> str:
    """Return typed text trimmed and without control characters (newlines and tabs stay)."""
    return _CONTROL_RE.sub("", raw or "").strip()


def date_parts(formdata, name: str) -> dict:
    """Return what was typed in a GOV.UK date input: its day, month and year boxes."""
    return {part: clean_text(formdata.get(f"{name}-{part}"))[:4] for part in ("day", "month", "year")}


def read_answer(spec: FieldSpec, formdata) -> tuple[object, Optional[str]]:
    """Read and check one answer from posted form data; return (value, error message or None)."""
    if spec.type == "checkboxes":
        chosen = [clean_text(v) for v in formdata.getlist(spec.name) if v]
        if any(v not in spec.options for v in chosen):
            return chosen, "Select from the options given"
        if spec.required and not chosen:
            return chosen, spec.missing_message()
        return [o for o in spec.options if o in chosen], None
    if spec.type == "date":
        parts = date_parts(formdata, spec.name)
        if not any(parts.values()):
            return None, spec.missing_message() if spec.required else None
        try:
            when = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
        except ValueError:
            return None, "Enter a real date, for example 27 3 2026"
        if when.year < 1900 or when > date.today().replace(year=date.today().year + 5):
            return None, "Enter a real date, for example 27 3 2026"
        return when.isoformat(), None
    if spec.type == "file":
        return None, None  # files are read by the view, which holds the upload
    value = clean_text(formdata.get(spec.name))
    if not value:
        return "", spec.missing_message() if spec.required else None
    if len(value) > MAX_LENGTH.get(spec.type, 500):
        return value, f"Answer must be {MAX_LENGTH.get(spec.type, 500)} characters or fewer"
    if spec.type in ("radios", "select") and value not in spec.options:
        return value, "Select from the options given"
    if spec.type == "email":
        try:
            return normalise_email(value), None
        except ValidationFailed:
            return value, "Enter an email address in the correct format, like name@example.com"
    if spec.type == "tel":
        try:
            return normalise_phone(value), None
        except ValidationFailed:
            return value, "Enter a telephone number, like 01632 960 001 or 07700 900 982"
    return value, None


def read_answers(specs, formdata) -> tuple[dict, dict]:
    """Read every non-file answer; return (answers, errors by field name)."""
    answers, errors = {}, {}
    for spec in specs:
        if spec.type == "file":
            continue
        value, error = read_answer(spec, formdata)
        answers[spec.name] = value
        if error:
            errors[spec.name] = error
    return answers, errors


@dataclass
class ResidentDetails:
    """Who sent the form: a name and at least one way to reach them."""

    name: str
    email: Optional[str] = None
    phone: Optional[str] = None


def read_resident_details(formdata) -> tuple[ResidentDetails, dict, dict]:
    """Read the 'your details' questions; return (details, errors, what was typed)."""
    typed = {k: clean_text(formdata.get(k)) for k in ("name", "email", "phone")}
    errors = {}
    if not typed["name"]:
        errors["name"] = "Enter your full name"
    elif len(typed["name"]) > 200:
        errors["name"] = "Name must be 200 characters or fewer"
    email = phone = None
    if typed["email"]:
        try:
            email = normalise_email(typed["email"][:254])
        except ValidationFailed:
            errors["email"] = "Enter an email address in the correct format, like name@example.com"
    if typed["phone"]:
        try:
            phone = normalise_phone(typed["phone"][:40])
        except ValidationFailed:
            errors["phone"] = "Enter a telephone number, like 01632 960 001 or 07700 900 982"
    if not typed["email"] and not typed["phone"] and "email" not in errors:
        errors["email"] = "Enter an email address or a phone number so we can tell you about progress"
    return ResidentDetails(typed["name"], email, phone), errors, typed


def display_value(spec: FieldSpec, value) -> str:
    """Return an answer as a resident or officer reads it."""
    if value in (None, "", []):
        return ""
    if spec.type == "checkboxes":
        return ", ".join(value)
    if spec.type == "date":
        try:
            return date.fromisoformat(value).strftime("%-d %B %Y")
        except ValueError:
            return str(value)
    return str(value)


def describe_answers(specs, answers: dict, uploads: dict) -> str:
    """Return the answers as the case description: one 'Question: answer' block each."""
    blocks = []
    for spec in specs:
        if spec.type == "file":
            attachment = uploads.get(spec.name)
            text = f"photo attached ({attachment.filename})" if attachment else ""
        else:
            text = display_value(spec, answers.get(spec.name))
        if text:
            blocks.append(f"{spec.label}\n{text}")
    return "\n\n".join(blocks)


@dataclass
class Submission:
    """A checked web-form submission, ready to become a contact and a case."""

    definition: FormDefinition
    answers: dict
    resident: Optional[ResidentDetails] = None
    customer: object = None  # a signed-in resident's (or the agent's caller's) Customer
    uploads: dict = field(default_factory=dict)  # field name -> Attachment
    location: tuple = (None, None)  # (latitude, longitude) from a photo the resident let us keep


def case_title(definition: FormDefinition, specs, answers: dict) -> str:
    """Return the case title: the form's title and, when given, where."""
    where = next((answers.get(s.name) for s in specs if s.location and answers.get(s.name)), None)
    return f"{definition.title}: {where}"[:200] if where else definition.title[:200]


def submit(submission: Submission, agent=None, started_at=None):
    """Turn a checked submission into a contact and a routed case; returns (contact, case).

    Does not commit: the caller commits, then sends the confirmation.
    """
    definition = submission.definition
    specs = parse_fields(definition.fields)
    customer = live_customer(submission.customer) if submission.customer is not None else None
    if customer is None:
        details = submission.resident
        if details is None:
            raise ValidationFailed("Say who is reporting", {"name": ["required"]})
        customer = resolve_customer(details.name, details.email, details.phone,
                                    source="phone" if agent is not None else "web_form")
    description = describe_answers(specs, submission.answers, submission.uploads)
    if agent is not None:
        contact = record_contact(
            customer, "phone", summary=f"Form filled for caller: {definition.title}",
            category=definition.category_code, outcome="case_raised", agent=agent,
            started_at=started_at, ended_at=utcnow() if started_at else None,
        )
    else:
        contact = record_contact(
            customer, "web_form", summary=f"Web form: {definition.title}",
            category=definition.category_code, outcome="case_raised",
        )
    where = next((submission.answers.get(s.name) for s in specs if s.location and submission.answers.get(s.name)),
                 None)
    latitude, longitude = submission.location
    case = open_case(
        customer, definition.service.code, definition.category_code,
        case_title(definition, specs, submission.answers), description,
        actor=agent, contact=contact, source_channel=contact.channel,
        location_address=where[:300] if where else None, latitude=latitude, longitude=longitude,
    )
    if submission.resident is not None:
        set_case_contact(case, submission.resident.email, submission.resident.phone)
    for attachment in submission.uploads.values():
        attachment.case_id = case.id
    db.session.flush()
    return contact, case


def confirmation_text(definition: FormDefinition, case, customer) -> str:
    """Return the body of the confirmation email."""
    lines = [
        f"Dear {customer.name},",
        "",
        f"Thank you. We have received your form: {definition.title}.",
        f"Your reference is {case.reference}.",
        "",
    ]
    if definition.next_steps:
        lines += [definition.next_steps.strip(), ""]
    lines += [
        "You can follow its progress online at /track with this reference and your email address.",
        "",
        "Please quote the reference if you contact us about it.",
    ]
    return "\n".join(lines)


def send_confirmation(definition: FormDefinition, case, customer) -> bool:
    """Email the resident their reference through the email channel; say whether it was sent.

    Sent after the case is committed, so a mail problem never loses a report. Skipped when
    the email channel is not installed or the resident gave no email address.
    """
    from ..security import resident_mail_allowed

    email = registry.find("email")
    address = email.address(customer, case) if email is not None else None
    if address is None or not resident_mail_allowed(address, "form confirmation"):
        return False  # over the limit the report still stands; the confirmation page shows the reference
    try:
        email.deliver(customer, f"{definition.title}: your reference is {case.reference}",
                      confirmation_text(definition, case, customer), case=case)
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        log.warning("confirmation for %s not sent: %s", case.reference, error.message)
        return False
    return True


def published_forms() -> list[FormDefinition]:
    """Return the forms residents may use, by title."""
    return db.session.scalars(
        select(FormDefinition).where(FormDefinition.published.is_(True)).order_by(FormDefinition.title)).all()


def category_name(definition: FormDefinition) -> str:
    """Return the display name of the category a form raises."""
    category = db.session.scalar(select(Category).where(Category.code == definition.category_code))
    return category.name if category else definition.category_code.replace("_", " ")


def pending_attachments(ids) -> dict:
    """Return the not-yet-filed attachments with these ids, by id."""
    wanted = [int(i) for i in ids if str(i).isdigit()]
    if not wanted:
        return {}
    rows = db.session.scalars(select(Attachment).where(
        Attachment.id.in_(wanted), Attachment.case_id.is_(None), Attachment.message_id.is_(None))).all()
    return {row.id: row for row in rows}
