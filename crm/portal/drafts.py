"""Web-form drafts: answers kept between pages and uploads kept across an error, by a token in the session."""
import secrets
from datetime import timedelta

from flask import request, session
from sqlalchemy import delete, select

from ..channels.uploads import clean_photo, max_photo_bytes, photo_attachment
from ..channels.web_form import pending_attachments
from ..errors import ValidationFailed
from ..extensions import db
from ..jobs import crontab, periodic_job
from ..models import Attachment, FormDefinition, FormDraft, utcnow

DRAFT_LIFETIME = timedelta(hours=24)
SESSION_KEY = "form_drafts"
_SCOPE_KEY = "crm.draft_scope"


def set_scope(scope: str) -> None:
    """Keep this request's drafts apart from others of the same form (an agent's, per caller)."""
    request.environ[_SCOPE_KEY] = scope


def _key(definition: FormDefinition) -> str:
    """Return the session key of a form's draft; an agent's drafts are kept per caller (see set_scope)."""
    scope = request.environ.get(_SCOPE_KEY)
    return f"{definition.id}:{scope}" if scope else str(definition.id)


def current_draft(definition: FormDefinition, create: bool = False):
    """Return this browser's draft of the form (made when asked), or None."""
    token = (session.get(SESSION_KEY) or {}).get(_key(definition))
    draft = None
    if token:
        draft = db.session.scalar(select(FormDraft).where(FormDraft.token == token,
                                                          FormDraft.form_id == definition.id))
        if draft is not None and draft.updated_at < utcnow() - DRAFT_LIFETIME:
            discard(draft)
            draft = None
    if draft is None and create:
        draft = FormDraft(token=secrets.token_urlsafe(32), form_id=definition.id, answers={}, uploads={})
        db.session.add(draft)
        db.session.flush()
        tokens = dict(session.get(SESSION_KEY) or {})
        tokens[_key(definition)] = draft.token
        session[SESSION_KEY] = tokens
    return draft


def draft_uploads(draft) -> dict:
    """Return the draft's attachments by field name."""
    if draft is None or not draft.uploads:
        return {}
    found = pending_attachments(draft.uploads.values())
    return {name: found[int(ident)] for name, ident in draft.uploads.items() if int(ident) in found}


def take_upload(definition, spec, file_storage, keep_location: bool) -> dict:
    """Check and store a photo for a question of the form; returns the draft's uploads by name."""
    data = file_storage.stream.read(max_photo_bytes() + 1)
    photo = clean_photo(data, keep_location=keep_location, field=spec.name)
    draft = current_draft(definition, create=True)
    attachment = photo_attachment(photo, file_storage.filename)
    db.session.add(attachment)
    db.session.flush()
    uploads = dict(draft.uploads or {})
    replaced = uploads.get(spec.name)
    uploads[spec.name] = attachment.id
    draft.uploads = uploads
    answers = dict(draft.answers or {})
    locations = dict(answers.get("_photo_locations") or {})
    if photo.latitude is not None:
        locations[spec.name] = [photo.latitude, photo.longitude]
    else:
        locations.pop(spec.name, None)
    answers["_photo_locations"] = locations
    draft.answers = answers
    if replaced:
        db.session.execute(delete(Attachment).where(Attachment.id == int(replaced), Attachment.case_id.is_(None),
                                                    Attachment.message_id.is_(None)))
    db.session.flush()
    return draft_uploads(draft)


def read_uploads(definition, specs, files, formdata) -> tuple[dict, dict]:
    """Store the photos sent with this post; return (uploads by field, errors by field)."""
    errors = {}
    draft = current_draft(definition)
    uploads = draft_uploads(draft)
    for spec in specs:
        if spec.type != "file":
            continue
        sent = files.get(spec.name)
        if sent is not None and sent.filename:
            try:
                uploads = take_upload(definition, spec, sent, formdata.get(spec.keep_location_name) == "yes")
            except ValidationFailed as refused:
                errors[spec.name] = refused.fields.get(spec.name, [refused.message])[0]
        elif spec.required and spec.name not in uploads:
            errors[spec.name] = spec.missing_message()
    return uploads, errors


def photo_location(draft) -> tuple:
    """Return the (latitude, longitude) of the first kept photo location of a draft, or (None, None)."""
    if draft is None:
        return None, None
    for lat_lon in ((draft.answers or {}).get("_photo_locations") or {}).values():
        return tuple(lat_lon)
    return None, None


def discard(draft) -> None:
    """Delete a draft and any photo of it not given to a case."""
    ids = [int(i) for i in (draft.uploads or {}).values()]
    if ids:
        db.session.execute(delete(Attachment).where(Attachment.id.in_(ids), Attachment.case_id.is_(None),
                                                    Attachment.message_id.is_(None)))
    db.session.delete(draft)
    tokens = dict(session.get(SESSION_KEY) or {})
    for key in [k for k, token in tokens.items() if token == draft.token]:
        del tokens[key]
        session[SESSION_KEY] = tokens


def forget(definition) -> None:
    """Drop the session's link to a submitted form's draft and delete the draft row."""
    draft = current_draft(definition)
    if draft is not None:
        draft.uploads = {}  # its photos now belong to the case
        discard(draft)


def purge_stale_drafts(now=None) -> int:
    """Delete drafts untouched for a day, with their orphan photos; return how many."""
    cutoff = (now or utcnow()) - DRAFT_LIFETIME
    stale = db.session.scalars(select(FormDraft).where(FormDraft.updated_at < cutoff)).all()
    for draft in stale:
        ids = [int(i) for i in (draft.uploads or {}).values()]
        if ids:
            db.session.execute(delete(Attachment).where(Attachment.id.in_(ids), Attachment.case_id.is_(None),
                                                        Attachment.message_id.is_(None)))
        db.session.delete(draft)
    db.session.commit()
    return len(stale)


@periodic_job(crontab(minute="17"))
def purge_stale_drafts_job():
    """Hourly: remove abandoned web-form drafts and their photos."""
    return purge_stale_drafts()
