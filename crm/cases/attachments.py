"""Attachments of a case (form photos, Open311 media, email attachments) and their thumbnails.

Every read goes through `check_view_attachment`, which asks the visibility policy about the
case or conversation the file belongs to. Thumbnails are decoded under a pixel budget and, when
the server runs on eventlet, in a real thread so a large photo never stalls the hub.
"""
import warnings
from collections import OrderedDict
from io import BytesIO
from typing import Optional

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import defer

from ..errors import NotFound
from ..extensions import db
from ..models import Attachment, Case, Conversation, Message

THUMBNAIL_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
THUMBNAIL_BOX = (320, 240)
_CACHE: "OrderedDict[tuple, Optional[bytes]]" = OrderedDict()
_CACHE_SIZE = 256


def _pixel_budget() -> int:
    """Return the largest image (in pixels) we decode: the uploads module's budget."""
    from ..channels import uploads  # noqa: PLC0415  (the hardening helper may rename its budget)

    return int(getattr(uploads, "PIXEL_BUDGET", None) or getattr(uploads, "MAX_PIXELS", 50_000_000))


def check_view_attachment(user, attachment: Attachment) -> None:
    """Refuse (403) an attachment whose case or conversation the user may not read; audit sensitive reads."""
    try:
        from .. import visibility  # noqa: PLC0415  (the one policy, when it has landed)
    except ImportError:
        visibility = None
    if visibility is not None and hasattr(visibility, "check_attachment"):
        visibility.check_attachment(user, attachment)
        return
    from ..visibility import check_conversation as check_view_conversation  # noqa: PLC0415
    from .queries import check_view  # noqa: PLC0415

    if attachment.message is not None:
        check_view_conversation(user, attachment.message.conversation)
    elif attachment.case_id is not None:
        check_view(user, db.session.get(Case, attachment.case_id))
    else:
        raise NotFound("No such attachment")  # a draft's upload belongs to no case yet


def visible_attachments(user, items) -> list[Attachment]:
    """Keep only the attachments the user may download (the policy's rule when it is there)."""
    try:
        from ..visibility import can_see_attachment  # noqa: PLC0415
    except ImportError:
        return list(items)
    return [item for item in items if can_see_attachment(user, item)]


def case_attachments(case: Case) -> list[Attachment]:
    """Return the files of a case: those filed on it and those on its conversations' messages, oldest first."""
    light = defer(Attachment.data)
    on_case = db.session.scalars(select(Attachment).options(light).where(Attachment.case_id == case.id)).all()
    on_messages = db.session.scalars(
        select(Attachment).options(light).join(Message, Message.id == Attachment.message_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.case_id == case.id, Message.internal.is_(False))).all()
    seen, found = set(), []
    for item in sorted([*on_case, *on_messages], key=lambda a: (a.created_at, a.id)):
        if item.id not in seen:
            seen.add(item.id)
            found.append(item)
    return found


def is_image(attachment: Attachment) -> bool:
    """Say whether a thumbnail can be offered for this attachment."""
    return attachment.content_type in THUMBNAIL_TYPES


def _render_thumbnail(data: bytes, budget: int) -> Optional[bytes]:
    """Decode an image within the pixel budget and return a small PNG/JPEG of it, or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(BytesIO(data), formats=["JPEG", "PNG", "GIF", "WEBP"]) as image:
                if image.width * image.height > budget:
                    return None
                if image.format == "JPEG":
                    image.draft("RGB", THUMBNAIL_BOX)  # decode at a fraction of the size
                image.seek(0)
                image.thumbnail(THUMBNAIL_BOX)
                small = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning, UnidentifiedImageError, OSError,
                SyntaxError, ValueError, EOFError, TypeError, KeyError, IndexError):
            return None
    out = BytesIO()
    if small.mode == "RGBA":
        small.save(out, "PNG", optimize=True)
    else:
        small.save(out, "JPEG", quality=80)
    return out.getvalue()


def thumbnail(attachment: Attachment) -> Optional[bytes]:
    """Return a thumbnail of an image attachment (JPEG, or PNG when transparent), or None when it cannot be made."""
    if not is_image(attachment):
        return None
    key = (attachment.id, attachment.sha256)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    from ..channels import uploads  # noqa: PLC0415

    # The uploads' decode slots and thread: at most two big decodes at once, never on the hub.
    slots = getattr(uploads, "_decode_slots", None)
    if slots is None:
        made = uploads.off_the_hub(_render_thumbnail, attachment.data, _pixel_budget())
    else:
        with slots:
            made = uploads.off_the_hub(_render_thumbnail, attachment.data, _pixel_budget())
    _CACHE[key] = made
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return made


def thumbnail_type(data: bytes) -> str:
    """Return the MIME type of a thumbnail made here."""
    return "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
