"""Photos sent by residents: type read from the bytes, size and pixel limits, location stripped.

A photo is decoded and written out again, so what is stored holds only the pixels, the colour
profile and the EXIF we chose to keep: no XMP, comments or bytes smuggled after the image. The
GPS block of the EXIF goes unless the resident asked to keep it.
"""
import hashlib
import logging
import threading
import warnings
from dataclasses import dataclass
from io import BytesIO
from typing import Optional

from flask import current_app, has_app_context
from PIL import Image, UnidentifiedImageError

from ..errors import ValidationFailed
from ..models import Attachment

# Pillow format name -> (MIME type, file extension).
PHOTO_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
DEFAULT_MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 50_000_000  # a 12-megapixel phone photo is 12,000,000
GPS_IFD = 0x8825
# Any image Pillow opens anywhere in the app: over this it warns, over twice this it refuses.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Photos decoded at once per process: a 50-megapixel photo takes ~200 MB while it is worked on.
_decode_slots = threading.BoundedSemaphore(2)  # green under the server's monkey patching
log = logging.getLogger(__name__)


@dataclass
class CleanPhoto:
    """A photo ready to store, with where it was taken when the resident let us keep that."""

    data: bytes
    content_type: str
    extension: str
    latitude: Optional[float] = None
    longitude: Optional[float] = None


def max_photo_bytes() -> int:
    """Return the largest photo accepted, in bytes."""
    if has_app_context():
        return int(current_app.config.get("PORTAL_MAX_PHOTO_BYTES", DEFAULT_MAX_PHOTO_BYTES))
    return DEFAULT_MAX_PHOTO_BYTES


def _refuse(message: str, field: str):
    raise ValidationFailed(message, {field: [message]}, code="bad_upload")


def _decimal_degrees(values, ref) -> Optional[float]:
    """Turn EXIF (degrees, minutes, seconds) and N/S/E/W into signed decimal degrees."""
    try:
        degrees, minutes, seconds = (float(v) for v in values)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = degrees + minutes / 60 + seconds / 3600
    return -value if str(ref).upper() in ("S", "W") else value


def photo_location(exif: Image.Exif) -> tuple[Optional[float], Optional[float]]:
    """Return (latitude, longitude) from a photo's EXIF GPS block, or (None, None)."""
    gps = exif.get_ifd(GPS_IFD)
    if not gps or 2 not in gps or 4 not in gps:
        return None, None
    lat = _decimal_degrees(gps[2], gps.get(1, "N"))
    lon = _decimal_degrees(gps[4], gps.get(3, "E"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None
    return lat, lon


def off_the_hub(function, *args):
    """Run CPU-heavy work in a real thread when eventlet serves, so other requests and chats go on meanwhile."""
    from eventlet import patcher, tpool

    if patcher.is_monkey_patched("thread"):
        return tpool.execute(function, *args)
    return function(*args)


def clean_photo(data: bytes, keep_location: bool = False, field: str = "photo") -> CleanPhoto:
    """Check that the bytes are a JPEG, PNG or WebP photo and re-encode them safely (off the event loop)."""
    if not data:
        _refuse("The selected file is empty", field)
    limit = max_photo_bytes()
    if len(data) > limit:
        _refuse(f"The selected file must be smaller than {limit // (1024 * 1024)}MB", field)
    with _decode_slots:
        return off_the_hub(_decode_and_reencode, data, keep_location, field)


def _decode_and_reencode(data: bytes, keep_location: bool, field: str) -> CleanPhoto:
    """Decode within the pixel budget and write the pixels out again (runs in a worker thread: no app context)."""
    not_a_photo = "The selected file must be a JPG, PNG or WEBP photo"
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(BytesIO(data), formats=list(PHOTO_FORMATS)) as probe:
                kind = probe.format
                if probe.width * probe.height > MAX_PIXELS:
                    _refuse("The selected photo has too many pixels", field)
                probe.verify()
            image = Image.open(BytesIO(data), formats=[kind])
            image.load()
        except ValidationFailed:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            _refuse("The selected photo has too many pixels", field)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, TypeError, KeyError,
                IndexError):
            _refuse(not_a_photo, field)
    content_type, extension = PHOTO_FORMATS[kind]
    exif = image.getexif()
    latitude = longitude = None
    if keep_location:
        latitude, longitude = photo_location(exif)
    elif GPS_IFD in exif:
        del exif[GPS_IFD]
    icc_profile = image.info.get("icc_profile")
    image.info = {}  # nothing from the original rides along unless named below
    options = {}
    if len(exif):
        options["exif"] = exif.tobytes()
    if icc_profile:
        options["icc_profile"] = icc_profile
    out = BytesIO()
    try:
        if kind == "JPEG":
            image.save(out, "JPEG", quality="keep", **options)
        elif kind == "PNG":
            image.save(out, "PNG", **options)
        else:
            image.save(out, "WEBP", quality=90, **options)
    except (OSError, ValueError) as error:
        log.warning("could not re-encode an uploaded %s: %s", kind, error)
        _refuse(not_a_photo, field)
    return CleanPhoto(out.getvalue(), content_type, extension, latitude, longitude)


def safe_filename(original: Optional[str], extension: str) -> str:
    """Return a display name from the resident's file name, with the extension we found."""
    stem = (original or "photo").replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    stem = "".join(ch for ch in stem if ch.isalnum() or ch in " -_")[:80].strip() or "photo"
    return f"{stem}.{extension}"


def photo_attachment(photo: CleanPhoto, original_name: Optional[str]) -> Attachment:
    """Make an (unsaved) Attachment row for a cleaned photo, not yet tied to a case."""
    return Attachment(
        filename=safe_filename(original_name, photo.extension),
        content_type=photo.content_type,
        size=len(photo.data),
        sha256=hashlib.sha256(photo.data).hexdigest(),
        data=photo.data,
    )
