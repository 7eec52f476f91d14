"""Turn form questions into GOV.UK Frontend macro parameters (rendered by templates/portal/_question.html)."""
from datetime import date
from typing import Optional

from ..channels.uploads import PHOTO_FORMATS, max_photo_bytes
from ..channels.web_form import FieldSpec, date_parts

AUTOCOMPLETE = {"email": "email", "tel": "tel"}
PHOTO_ACCEPT = ",".join(sorted({mime for mime, _ in PHOTO_FORMATS.values()}))


def first_input_id(spec: FieldSpec) -> str:
    """Return the id the error summary links to: the first box of the question."""
    return f"{spec.name}-day" if spec.type == "date" else spec.name


def typed_values(specs, formdata) -> dict:
    """Return what the resident typed, for showing the form again."""
    values = {}
    for spec in specs:
        if spec.type == "checkboxes":
            values[spec.name] = formdata.getlist(spec.name)
        elif spec.type == "date":
            values[spec.name] = date_parts(formdata, spec.name)
        elif spec.type == "file":
            values[spec.keep_location_name] = formdata.get(spec.keep_location_name) == "yes"
        else:
            values[spec.name] = (formdata.get(spec.name) or "")[:5000]
    return values


def stored_values(specs, answers: dict) -> dict:
    """Return stored answers in the shape the form shows them (dates split into boxes)."""
    values = dict(answers)
    for spec in specs:
        if spec.type == "date" and answers.get(spec.name):
            try:
                when = date.fromisoformat(answers[spec.name])
                values[spec.name] = {"day": str(when.day), "month": str(when.month), "year": str(when.year)}
            except (TypeError, ValueError):
                values[spec.name] = {}
    return values


def _legend(spec: FieldSpec, heading: bool) -> dict:
    return {"legend": {"text": spec.label, "isPageHeading": heading,
                       "classes": "govuk-fieldset__legend--l" if heading else "govuk-fieldset__legend--s"}}


def question_params(spec: FieldSpec, value, error: Optional[str], heading: bool = False,
                    uploaded=None) -> tuple[str, dict]:
    """Return (component, params) for one question, with the answer and error filled in."""
    label = {"text": spec.label, "isPageHeading": heading,
             "classes": "govuk-label--l" if heading else "govuk-label--s"}
    common = {"hint": {"text": spec.hint} if spec.hint else None,
              "errorMessage": {"text": error} if error else None}
    if spec.type in ("text", "email", "tel"):
        params = {"id": spec.name, "name": spec.name, "label": label, "value": value or "",
                  "type": {"email": "email", "tel": "tel"}.get(spec.type, "text"), **common}
        if spec.type in AUTOCOMPLETE:
            params["autocomplete"] = AUTOCOMPLETE[spec.type]
        if spec.type == "email":
            params["spellcheck"] = False
        if spec.type == "tel":
            params["classes"] = "govuk-input--width-20"
        return "input", params
    if spec.type == "textarea":
        return "textarea", {"id": spec.name, "name": spec.name, "label": label, "value": value or "",
                            "rows": 5, **common}
    if spec.type == "radios":
        items = [{"value": o, "text": o, "checked": value == o} for o in spec.options]
        return "radios", {"idPrefix": spec.name, "name": spec.name, "fieldset": _legend(spec, heading),
                          "items": items, **common}
    if spec.type == "checkboxes":
        chosen = value or []
        items = [{"value": o, "text": o, "checked": o in chosen} for o in spec.options]
        return "checkboxes", {"idPrefix": spec.name, "name": spec.name, "fieldset": _legend(spec, heading),
                              "items": items, **common}
    if spec.type == "select":
        items = [{"value": "", "text": "Choose an option", "selected": not value}]
        items += [{"value": o, "text": o, "selected": value == o} for o in spec.options]
        return "select", {"id": spec.name, "name": spec.name, "label": label, "items": items, **common}
    if spec.type == "date":
        parts = value if isinstance(value, dict) else {}
        wrong = " govuk-input--error" if error else ""
        items = [
            {"name": "day", "label": "Day", "classes": "govuk-input--width-2" + wrong, "value": parts.get("day", "")},
            {"name": "month", "label": "Month", "classes": "govuk-input--width-2" + wrong,
             "value": parts.get("month", "")},
            {"name": "year", "label": "Year", "classes": "govuk-input--width-4" + wrong, "value": parts.get("year", "")},
        ]
        if not spec.hint:
            common["hint"] = {"text": "For example, 27 3 2026"}
        return "date", {"id": spec.name, "namePrefix": spec.name, "fieldset": _legend(spec, heading),
                        "items": items, **common}
    if spec.type == "file":
        hint = spec.hint or "A photo helps us find and fix the problem."
        hint += f" JPG, PNG or WEBP, up to {max_photo_bytes() // (1024 * 1024)}MB."
        if uploaded is not None:
            hint += f" You have already sent {uploaded.filename}; choose another file only to replace it."
        return "file", {"id": spec.name, "name": spec.name, "label": label,
                        "hint": {"text": hint}, "errorMessage": common["errorMessage"],
                        "attributes": {"accept": PHOTO_ACCEPT}}
    raise ValueError(f"unknown question type {spec.type}")


def keep_location_params(spec: FieldSpec, checked: bool) -> dict:
    """Return the checkbox a photo question offers: keep the location recorded in the photo."""
    return {
        "idPrefix": spec.keep_location_name, "name": spec.keep_location_name,
        "classes": "govuk-checkboxes--small",
        "items": [{
            "value": "yes", "checked": checked,
            "text": "Keep the location recorded in the photo",
            "hint": {"text": "It helps us find the problem. If you leave this unticked we remove it from the photo."},
        }],
    }


def resident_detail_params(values: dict, errors: dict, heading: bool = False) -> list[tuple[str, dict]]:
    """Return the 'your details' questions: name, email and phone."""
    size = "govuk-label--m" if heading else "govuk-label--s"
    def err(name):
        return {"text": errors[name]} if errors.get(name) else None
    return [
        ("input", {"id": "name", "name": "name", "label": {"text": "Full name", "classes": size},
                   "autocomplete": "name", "spellcheck": False, "value": values.get("name", ""),
                   "errorMessage": err("name")}),
        ("input", {"id": "email", "name": "email", "type": "email", "label": {"text": "Email address", "classes": size},
                   "hint": {"text": "We'll send your reference and updates here."},
                   "autocomplete": "email", "spellcheck": False, "value": values.get("email", ""),
                   "errorMessage": err("email")}),
        ("input", {"id": "phone", "name": "phone", "type": "tel", "label": {"text": "Phone number (optional if you gave an email)", "classes": size},
                   "autocomplete": "tel", "classes": "govuk-input--width-20", "value": values.get("phone", ""),
                   "errorMessage": err("phone")}),
    ]


def error_list(errors: dict, specs) -> list[dict]:
    """Return the error summary's list, in the order the questions appear."""
    by_name = {s.name: s for s in specs}
    ordered = [s.name for s in specs if s.name in errors] + [n for n in errors if n not in by_name]
    return [{"text": errors[name], "href": "#" + (first_input_id(by_name[name]) if name in by_name else name)}
            for name in ordered]
