"""The email channel: parse what arrived, thread it, recognise auto-replies, build what goes out.

One pipeline for every way in (SMTP listener, HTTP endpoint, file import): `receive(raw)` stores
the raw bytes and commits before doing anything else, so nothing is ever lost; processing then
happens in a savepoint, and whatever cannot be understood is quarantined with its reason.
"""
import hashlib
import html as html_lib
import logging
import re
import secrets
import smtplib
import ssl
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage, Message as MimeMessage
from email.parser import BytesHeaderParser, BytesParser
from email.policy import EmailPolicy
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from functools import lru_cache
from html.parser import HTMLParser
from typing import Iterable, Optional

import nh3
from blinker import Namespace
from flask import current_app
from huey.exceptions import RetryTask
from sqlalchemy import bindparam, delete, func, inspect, select, update
from sqlalchemy.orm import joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import flag_modified, set_committed_value
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..audit import audit
from ..batching import current_batch, remembered, stage, write_batch
from ..cases import lifecycle
from ..cases.routing import keywords_match
from ..cases.service import merge_cases, open_case, reopen_case
from ..knowledge.notices import notice_text
from ..customers.identity import live_customer, normalise_email, reserved_mail_domain, resolve_customer
from ..customers.timeline import record_contact
from ..errors import Conflict, DomainError, ValidationFailed
from ..extensions import db
from ..jobs import crontab, huey, job, periodic_job
from ..models import (
    OUTCOMES, Attachment, Case, Contact, Conversation, Customer, CustomerIdentity, InboundEmail, Message,
    OutboundEmail, Queue, RoutingRule, Service, utcnow,
)
from ..models.email import EmailThreadRef
from ..signals import message_stored, send_after_commit

log = logging.getLogger(__name__)

_signals = Namespace()
# Sent after commit for each queued outbound email; the receiver below hands it to the job queue.
outbound_email_queued = _signals.signal("outbound-email-queued")

CHANNEL = "email"
ATTACHMENT_URL = "/email/attachments/{id}"
CASE_REF_RE = re.compile(r"\bCAS-(\d{6,})\b", re.IGNORECASE)
SUBJECT_TOKEN_RE = re.compile(r"\[#([a-z0-9]{8,64})\]", re.IGNORECASE)
REPLY_ADDRESS_RE = re.compile(r"^reply\+([a-z0-9]{8,64})@(.+)$", re.IGNORECASE)
MSGID_RE = re.compile(r"<([^<>\s]{1,998})>")
MAX_BODY_CHARS = 200_000
OUR_ID_PREFIX = "crm."
STUCK_AFTER = timedelta(minutes=1)  # the sweep leaves younger stored messages to whoever is taking them now
RETRY_FIRST_DELAY_SECONDS = 30  # then 60, 120, ... until EMAIL_SEND_ATTEMPTS are spent
MAX_THREAD_IDS = 50
BLOCKED_EXTENSIONS = frozenset(
    "ade adp app bat chm cmd com cpl dll exe hta inf ins isp jar js jse lib lnk mde msc msi msp "
    "mst pif ps1 reg scr sct shb shs sys vb vbe vbs vxd wsc wsf wsh".split())
BLOCKED_TYPES = frozenset({"application/x-msdownload", "application/x-msdos-program",
                           "application/x-dosexec", "application/x-sh", "application/javascript"})
SAFE_HTML_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "div", "em", "font", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "small", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
SAFE_HTML_ATTRIBUTES = {
    "a": {"href", "title"}, "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}, "ol": {"start"},
}


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=4096)
def _parsed_header(header_factory, name: str, value: str):
    return header_factory(name, value)


class _ReadPolicy(EmailPolicy):
    """The modern email policy, remembering parsed header values.

    The standard library parses a header again on every access, and `get_content_type()`
    alone reads Content-Type about ten times per message (get_body, iter_parts, is_attachment);
    parsed headers are immutable, so the same (name, value) is parsed once.
    """

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name"):
            return value
        value = "".join(_LINESEPS.split(value))
        if len(value) > 1000:  # a long header is rarely read twice: keep the cache small
            return self.header_factory(name, value)
        return _parsed_header(self.header_factory, name, value)


_LINESEPS = re.compile(r"\n|\r")  # as EmailPolicy: not splitlines, which splits on more
READ_POLICY = _ReadPolicy()

@dataclass
class ParsedAttachment:
    """A file that came with a message, after the size and type checks."""

    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: Optional[str] = None


@dataclass
class ParsedEmail:
    """What the channel needs from a MIME message, read defensively."""

    mime: MimeMessage
    message_id: Optional[str] = None
    in_reply_to: list = field(default_factory=list)
    references: list = field(default_factory=list)
    from_name: str = ""
    from_address: Optional[str] = None
    from_raw: str = ""
    recipients: list = field(default_factory=list)  # To, Cc, Delivered-To, X-Original-To
    subject: str = ""
    date: Optional[datetime] = None
    text: str = ""
    html: Optional[str] = None
    attachments: list = field(default_factory=list)
    withheld: list = field(default_factory=list)
    defects: list = field(default_factory=list)

    def header(self, name: str) -> str:
        """Return a header's decoded value ('' when absent or unreadable)."""
        return header_text(self.mime, name)


def is_our_message_id(message_id: str, our_domain: str) -> bool:
    """Say whether a Message-ID is one this system made (colleagues' own mail may share the domain)."""
    lowered = message_id.lower()
    return lowered.startswith(OUR_ID_PREFIX) and lowered.endswith("@" + our_domain.lower())


def message_id_of(raw: bytes) -> Optional[str]:
    """Read the Message-ID straight from the header block, without a full parse."""
    end = raw.find(b"\r\n\r\n")
    end = raw.find(b"\n\n") if end < 0 else end
    block = raw[: end if end >= 0 else 64 * 1024].decode("latin-1")
    match = re.search(r"^message-id:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)", block, re.IGNORECASE | re.MULTILINE)
    return normalise_message_id(match.group(1)) if match else None


def normalise_message_id(value: Optional[str]) -> Optional[str]:
    """Return a Message-ID without its angle brackets, or None when there is nothing usable."""
    if not value:
        return None
    match = MSGID_RE.search(value)
    token = match.group(1) if match else value.strip().split()[0] if value.strip() else ""
    # NUL is never part of a real Message-ID, and PostgreSQL text refuses it (the raw insert would fail).
    token = token.replace("\x00", "").strip("<>")[:500]
    return token or None


def message_ids_in(value: str) -> list:
    """Return every <id> in a References / In-Reply-To value, in order."""
    return [m[:500] for m in MSGID_RE.findall(value or "")]


def _raw_headers(mime: MimeMessage, name: str) -> list:
    """Return the raw values of a header, by a per-message index of header names."""
    index = getattr(mime, "_crm_raw_headers", None)
    if index is None:  # built once per message: the pipeline reads some twenty headers
        index = {}
        for key, raw in mime.raw_items():
            index.setdefault(key.lower(), []).append(raw)
        mime._crm_raw_headers = index
    return index.get(name.lower(), [])


def _unfolded(mime: MimeMessage, name: str) -> str:
    """Return the first raw value of a header on one line, undecodable bytes read as text."""
    raw_values = _raw_headers(mime, name)
    return without_surrogates("".join(_LINESEPS.split(raw_values[0])).strip()) if raw_values else ""


def header_text(mime: MimeMessage, name: str) -> str:
    """Return a header decoded to text; fall back to the raw value when the modern parser gives up."""
    raw_values = _raw_headers(mime, name)
    if not raw_values:
        return ""
    for raw in raw_values:
        if re.search("[\udc80-\udcff]", raw):
            # Raw 8-bit bytes in a header (against the RFC, but common): UTF-8, else Windows-1252.
            return _decode_words(_decode_bytes(raw.encode("ascii", "surrogateescape"), None))
    try:
        value = mime.get(name)
        return "" if value is None else without_surrogates(str(value))
    except Exception:  # noqa: BLE001 - a malformed header must not stop the message
        return _decode_words(raw_values[0])


def without_surrogates(text: str) -> str:
    """Turn the surrogate escapes the email package uses for undecodable bytes back into text."""
    if not text or not re.search("[\ud800-\udfff]", text):
        return text
    try:
        return _decode_bytes(text.encode("utf-8", "surrogateescape"), None)
    except UnicodeEncodeError:
        return re.sub("[\ud800-\udfff]", "\ufffd", text)


def _decode_words(raw: str) -> str:
    """Decode RFC 2047 encoded words leniently."""
    try:
        return without_surrogates(str(make_header(decode_header(raw))))
    except Exception:  # noqa: BLE001
        return without_surrogates(raw)


def _clean_line(text: str, limit: int) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", without_surrogates(text or "")).strip()[:limit]


_WORDS = r"[A-Za-z0-9'-]+(?: [A-Za-z0-9'-]+)*"
_ADDR_SPEC = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
# The everyday shapes of a single mailbox, "Jane Resident <jane@example.org>" or a bare address,
# read directly: for these the modern parser gives the same pair, at a tenth of a millisecond
# less per message. Anything else (quotes, encoded words, groups, lists, comments) goes to it.
_PLAIN_MAILBOX = re.compile(rf"^[ \t]*(?:(?:({_WORDS})[ \t]*)?<({_ADDR_SPEC})>|({_ADDR_SPEC}))[ \t]*$")


def _plain_mailbox(raw: str) -> Optional[tuple]:
    """Return (display name, address) of a header that is one plain mailbox, else None."""
    match = _PLAIN_MAILBOX.match(raw)
    if match is None:
        return None
    return (match.group(1) or "", match.group(2) or match.group(3))


def _addresses(mime: MimeMessage, name: str) -> list:
    """Return (display name, address) pairs of an address header, read leniently."""
    raw_values = _raw_headers(mime, name)
    if not raw_values:
        return []
    plain = _plain_mailbox(raw_values[0]) if len(raw_values) == 1 else None
    pairs = [plain] if plain is not None else []
    try:
        value = mime.get(name) if plain is None else None
        if value is not None and getattr(value, "addresses", None) is not None:
            pairs = [(a.display_name, a.addr_spec) for a in value.addresses]
    except Exception:  # noqa: BLE001
        pairs = []
    if not pairs:
        # Addresses are read from the raw value and only then are display names decoded: an encoded
        # name can hold anything, "<someone@else>" and line breaks included, and must never become the address.
        pairs = [(_decode_words(n), a) for n, a in getaddresses(raw_values)]
    return [(_clean_line(n, 200), without_surrogates((a or "").strip())) for n, a in pairs
            if a and "@" in a and "=?" not in a]


def _decode_bytes(data: bytes, charset: Optional[str]) -> str:
    """Decode a part's bytes: its declared charset, else UTF-8, else Windows-1252 (never raises)."""
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace")


def part_text(part: MimeMessage) -> str:
    """Return a text part's content as str whatever its transfer encoding or charset claims."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        data = None
    if data is None:
        payload = part.get_payload()
        return without_surrogates(payload) if isinstance(payload, str) else ""
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = None
    if charset in ("us-ascii", "ascii"):
        charset = None  # many mailers say ascii and send UTF-8 or Latin-1
    return _decode_bytes(data, charset)


def _leaf_parts(part: MimeMessage, depth: int = 0):
    """Yield the leaf parts of a message, not descending into attached messages (max depth 20)."""
    if depth > 20:
        return
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            for child in payload:
                if isinstance(child, MimeMessage):
                    yield from _leaf_parts(child, depth + 1)
            return
    yield part


def _filename(part: MimeMessage, index: int) -> str:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    if not name and part.get_content_type() == "message/rfc822":
        name = "attached-message.eml"
    return safe_filename(_decode_words(name or ""), f"attachment-{index}")


# Control characters, path separators, and the invisible or reordering characters that make
# "invoice\u202efdp.exe" look like a PDF.
_UNSAFE_IN_FILENAMES = re.compile(r"[\x00-\x1f\x7f-\x9f/\\\u200b-\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]+")


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """Return a file name safe to store and to send back in a header: one line, no path, no hidden tricks."""
    name = _UNSAFE_IN_FILENAMES.sub("_", without_surrogates(name or "")).strip(" ._") or fallback
    return name[-255:]


def _is_attachment(part: MimeMessage) -> bool:
    """Say whether a leaf that is not the body is a file to keep (an unnamed extra text part is not)."""
    if (part.get_content_disposition() or "").lower() == "attachment":
        return True
    if part.get_content_type() in ("text/plain", "text/html"):
        return False  # an alternative or stray body part: its text is in the raw message
    return part.get_content_maintype() != "multipart"


def parse_email(raw: bytes, *, max_attachment_bytes: int = 10 * 1024 * 1024) -> ParsedEmail:
    """Parse raw RFC 5322 bytes with the modern email API, tolerating every malformation we can."""
    mime = BytesParser(policy=READ_POLICY).parsebytes(raw)
    parsed = ParsedEmail(mime=mime)
    parsed.defects = [type(d).__name__ for d in getattr(mime, "defects", [])][:20]
    # Message-IDs and the date are read from the raw values: the modern parser's header objects
    # would only be turned back into the same text (and parsing them is most of the parse).
    parsed.message_id = normalise_message_id(_unfolded(mime, "Message-ID"))
    parsed.in_reply_to = message_ids_in(_unfolded(mime, "In-Reply-To"))
    parsed.references = message_ids_in(_unfolded(mime, "References"))
    parsed.subject = _clean_line(header_text(mime, "Subject"), 300)
    senders = _addresses(mime, "From") or _addresses(mime, "Sender")
    from_raw = _unfolded(mime, "From")
    parsed.from_raw = _clean_line(from_raw if _plain_mailbox(from_raw) else header_text(mime, "From"), 500)
    if senders:
        name, address = senders[0]
        parsed.from_name = name
        try:
            parsed.from_address = normalise_email(address)
        except DomainError:
            parsed.from_address = None
    for name in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
        parsed.recipients.extend(a.lower() for _, a in _addresses(mime, name))
    try:
        parsed.date = parsedate_to_datetime(_unfolded(mime, "Date"))
        if parsed.date is not None and parsed.date.tzinfo is None:
            parsed.date = None
    except (TypeError, ValueError, IndexError):
        parsed.date = None
    _read_body(parsed, max_attachment_bytes)
    return parsed


def _read_body(parsed: ParsedEmail, max_attachment_bytes: int) -> None:
    """Fill text, html and attachments from the MIME tree."""
    mime = parsed.mime
    text_part = html_part = None
    try:
        text_part = mime.get_body(preferencelist=("plain",))
        html_part = mime.get_body(preferencelist=("html",))
    except Exception:  # noqa: BLE001 - broken trees: fall back to walking the leaves below
        pass
    leaves = list(_leaf_parts(mime))
    if text_part is None and html_part is None and mime.get_content_maintype() == "multipart" \
            and isinstance(mime.get_payload(), str):
        parsed.defects.append("UnreadableMultipart")
        _read_broken_multipart(parsed, mime.get_payload(), max_attachment_bytes)
        return
    if text_part is None and html_part is None:
        # No recognisable body (broken boundary, odd types): take the first inline text leaf.
        for part in leaves:
            if part.get_content_maintype() == "text" and (part.get_content_disposition() or "inline") == "inline":
                if part.get_content_subtype() == "html":
                    html_part = part
                else:
                    text_part = part
                break
    if html_part is not None:
        parsed.html = part_text(html_part)
    if text_part is not None:
        parsed.text = part_text(text_part)
    elif parsed.html:
        parsed.text = html_to_text(parsed.html)
    body_parts = {id(text_part), id(html_part)}
    for index, part in enumerate(leaves, start=1):
        if id(part) in body_parts or not _is_attachment(part):
            continue
        _read_attachment(parsed, part, index, max_attachment_bytes)
    if mime.get_content_type() == "message/rfc822" and not leaves:
        parsed.text = parsed.text or ""


def _read_broken_multipart(parsed: ParsedEmail, payload: str, max_attachment_bytes: int) -> None:
    """Read a multipart whose declared boundary is missing or wrong, using the boundary its parts use."""
    match = re.search(r"^--([^\s-][^\s]{0,69}?)\s*$", payload, re.MULTILINE)
    payload = without_surrogates(payload)
    if match is None:
        parsed.text = payload.strip()
        return
    boundary = match.group(1).removesuffix("--")
    rebuilt = f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n{payload}'.encode("utf-8", "surrogateescape")
    if not isinstance(BytesParser(policy=READ_POLICY).parsebytes(rebuilt).get_payload(), list):
        parsed.text = payload.strip()  # the guess did not help either: show the text as it is
        return
    inner = parse_email(rebuilt, max_attachment_bytes=max_attachment_bytes)
    parsed.text, parsed.html = inner.text, inner.html
    parsed.attachments, parsed.withheld = inner.attachments, inner.withheld


def _read_attachment(parsed: ParsedEmail, part: MimeMessage, index: int, max_bytes: int) -> None:
    filename = _filename(part, index)
    content_type = part.get_content_type()[:100]
    try:
        if content_type == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            data = inner.as_bytes(policy=policy.compat32) if isinstance(inner, MimeMessage) else b""
        else:
            data = part.get_payload(decode=True) or b""
    except Exception:  # noqa: BLE001
        data = b""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in BLOCKED_EXTENSIONS or content_type in BLOCKED_TYPES:
        parsed.withheld.append({"filename": filename, "reason": "file type not accepted", "size": len(data)})
        return
    if len(data) > max_bytes:
        parsed.withheld.append({"filename": filename, "reason": "larger than the attachment limit",
                                "size": len(data)})
        return
    content_id = normalise_message_id(header_text(part, "Content-ID"))
    content_id = content_id[:255] if content_id else None
    inline = (part.get_content_disposition() or "").lower() == "inline" or (
        content_id is not None and part.get_content_maintype() == "image")
    parsed.attachments.append(ParsedAttachment(filename, content_type, data, inline, content_id))


class _TextExtractor(HTMLParser):
    """Turn HTML into readable plain text (blocks become lines, scripts and styles vanish)."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "hr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.chunks = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head", "title"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.chunks.append("\n")
            if tag == "li":
                self.chunks.append("- ")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.chunks.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """Derive plain text from HTML."""
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # noqa: BLE001
        return re.sub(r"<[^>]*>", " ", markup)
    lines = [line.strip() for line in "".join(parser.chunks).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_ABSOLUTE_URL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def _only_own_files(own: frozenset):
    """Return an nh3 attribute filter that lets a message point at its own stored files and nothing local else."""

    def keep(tag, attribute, value):
        if tag == "img" and attribute == "src":
            # Only this message's stored images: remote ones would be tracking pixels, and any other
            # path here (../, another message's file) makes a reader's browser request it as them.
            return value if value.strip() in own else None
        if tag == "a" and attribute == "href" and not _ABSOLUTE_URL.match(value.strip()):
            return value if value.strip() in own else None  # relative and protocol-relative links go
        return value

    return keep


def sanitise_html(markup: str, inline_images: Optional[dict] = None, own_files: Iterable[str] = ()) -> str:
    """Return email HTML made safe to show in the console, inline images pointed at our copies.

    `inline_images` maps the message's Content-IDs to the URLs of its stored files, `own_files`
    lists the URLs of all its files: nothing else local may be referenced.
    """
    for content_id, url in (inline_images or {}).items():
        markup = markup.replace(f"cid:{content_id}", url)
    own = frozenset((inline_images or {}).values()) | frozenset(own_files)
    return nh3.clean(markup, tags=SAFE_HTML_TAGS, attributes=SAFE_HTML_ATTRIBUTES,
                     attribute_filter=_only_own_files(own), url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True)


_QUOTE_LINES = [
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.IGNORECASE),                 # Gmail, Apple Mail
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}", re.IGNORECASE),        # Outlook (older)
    re.compile(r"^\s*_{10,}\s*$"),                                              # Outlook on the web
    re.compile(r"^\s*(Le|Am|El|Il)\b.{0,300}(a écrit|schrieb|escribió|ha scritto)\s*:\s*$", re.IGNORECASE),
]
_QUOTE_LINE_PAIRS = [
    re.compile(r"^\s*On\b.{0,300}\n.{0,200}\bwrote:\s*$", re.IGNORECASE),     # Gmail, wrapped
    re.compile(r"^\s*\**From:\**\s.+\n\s*\**(Sent|Date):\**\s.+", re.IGNORECASE),  # Outlook
]
_SIGNATURE_LINES = [
    re.compile(r"^-- ?$"),
    re.compile(r"^\s*Sent from my (iPhone|iPad|Android|Samsung|mobile|BlackBerry)", re.IGNORECASE),
    re.compile(r"^\s*Get Outlook for (iOS|Android)", re.IGNORECASE),
]


_FORWARD_MARKERS = re.compile(r"^\s*(-+ ?Forwarded message ?-+|Begin forwarded message:)", re.IGNORECASE | re.MULTILINE)
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|fw)\s*:", re.IGNORECASE)


def trim_reply(text: str, subject: str = "") -> str:
    """Return the new part of a reply: quoted history and signature cut (the full text is kept apart).

    A forward is left whole: the forwarded history is what the resident is telling us.
    """
    if _FORWARD_SUBJECT.match(subject or "") or _FORWARD_MARKERS.search(text or ""):
        return (text or "").strip()
    lines = (text or "").replace("\r\n", "\n").split("\n")
    cut = len(lines)
    for index in range(1, len(lines)):
        line = lines[index]
        pair = line + "\n" + (lines[index + 1] if index + 1 < len(lines) else "")
        if (any(p.search(line) for p in _QUOTE_LINES + _SIGNATURE_LINES)
                or any(p.search(pair) for p in _QUOTE_LINE_PAIRS)):
            cut = index
            break
    kept = lines[:cut]
    # A trailing block of "> " lines is quoted history even without an attribution line.
    while kept and (kept[-1].startswith(">") or not kept[-1].strip()):
        kept.pop()
    trimmed = "\n".join(kept).strip()
    return trimmed or (text or "").strip()


# ---------------------------------------------------------------------------------------------
# Auto-replies, bounces and loops
# ---------------------------------------------------------------------------------------------

_BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_AUTO_SUBJECTS = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response)|out of (the )?office|undeliver(able|ed)|"
    r"delivery status notification|mail delivery (failed|failure|system)|returned mail|"
    r"failure notice|delivery failure|abwesenheitsnotiz|réponse automatique)", re.IGNORECASE)


@dataclass
class AutoSignal:
    """Why a message is automatic, and whether it is a bounce."""

    reasons: list
    bounce: bool = False


def detect_automatic(parsed: ParsedEmail, envelope_from: Optional[str], our_domain: str,
                     our_addresses: Iterable[str] = ()) -> Optional[AutoSignal]:
    """Recognise auto-replies, bounces, list mail and our own mail coming back (None when human)."""
    reasons = []
    bounce = False
    auto_submitted = parsed.header("Auto-Submitted").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        reasons.append(f"Auto-Submitted: {auto_submitted[:40]}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Autogenerated"):
        if parsed.header(name).strip():
            reasons.append(f"{name} header")
    precedence = parsed.header("Precedence").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        reasons.append(f"Precedence: {precedence}")
    for name in ("List-Id", "List-Unsubscribe"):
        if parsed.header(name).strip():
            reasons.append(f"{name} header")
    if envelope_from == "" or parsed.header("Return-Path").strip() == "<>":
        reasons.append("null return path")
    content_type = parsed.mime.get_content_type()
    report_type = (parsed.mime.get_param("report-type") or "").lower() if content_type == "multipart/report" else ""
    if content_type == "multipart/report":
        if report_type == "delivery-status":
            bounce = True
        reasons.append(f"multipart/report ({report_type or 'unknown'})")
    if parsed.header("X-Failed-Recipients").strip():
        bounce = True
        reasons.append("X-Failed-Recipients header")
    sender = parsed.from_address or ""
    if _BOUNCE_SENDERS.match(sender) or _BOUNCE_SENDERS.match(parsed.from_raw.split("<")[-1]):
        bounce = bounce or bool(_AUTO_SUBJECTS.match(parsed.subject)) or "null return path" in reasons
        reasons.append("sent by a mail system")
    if parsed.message_id and is_our_message_id(parsed.message_id, our_domain):
        reasons.append("our own Message-ID came back")
    if sender and (sender in {a.lower() for a in our_addresses}
                   or (sender.startswith("reply+") and sender.endswith("@" + our_domain.lower()))):
        reasons.append("sent from our own address")
    if not reasons and _AUTO_SUBJECTS.match(parsed.subject):
        reasons.append("subject of an automatic message")
        bounce = bool(re.match(r"^\s*(undeliver|delivery status|mail delivery|returned mail|failure notice|"
                               r"delivery failure)", parsed.subject, re.IGNORECASE))
    return AutoSignal(reasons, bounce) if reasons else None


_FINAL_RECIPIENT_RE = re.compile(r"^(?:Final|Original)-Recipient:\s*rfc822;\s*<?([^\s<>;]+@[^\s<>;]+)>?",
                                 re.IGNORECASE | re.MULTILINE)
_ACTION_RE = re.compile(r"^Action:\s*(\w+)", re.IGNORECASE | re.MULTILINE)
_STATUS_RE = re.compile(r"^Status:\s*([245])\.\d{1,3}\.\d{1,3}", re.IGNORECASE | re.MULTILINE)
_QMAIL_RE = re.compile(r"^<([^\s<>]+@[^\s<>]+)>:\s*$", re.MULTILINE)


@dataclass
class BounceReport:
    """What a bounce says: who failed, whether for good, and which of our messages it returns."""

    recipients: list
    permanent: bool
    our_message_ids: list
    diagnostic: str


def read_bounce(raw: bytes, parsed: ParsedEmail, our_domain: str) -> BounceReport:
    """Read a bounce of any common MTA (DSN, Exim, qmail, Exchange, Gmail) from its text."""
    text = raw.decode("latin-1", errors="replace")
    # Bounces quote the original headers, sometimes base64-encoded inside a part: read those too.
    for part in _leaf_parts(parsed.mime):
        if part.get_content_maintype() in ("text", "message"):
            text += "\n" + part_text(part)
    recipients = []
    for address in _FINAL_RECIPIENT_RE.findall(text) + _QMAIL_RE.findall(text) + [
            a for _, a in getaddresses([parsed.header("X-Failed-Recipients")])]:
        address = address.strip().lower()
        if address and address not in recipients:
            recipients.append(address)
    actions = {a.lower() for a in _ACTION_RE.findall(text)}
    statuses = set(_STATUS_RE.findall(text))
    permanent = ("failed" in actions or "5" in statuses or bool(re.search(r"#5\.\d+\.\d+", text))
                 or bool(parsed.header("X-Failed-Recipients").strip()))
    if not actions and not statuses and not permanent:
        permanent = bool(re.search(r"\b(55[0-4]|5\.\d\.\d)\b", text))
    ours = [m for m in dict.fromkeys(parsed.in_reply_to + parsed.references + MSGID_RE.findall(text))
            if is_our_message_id(m, our_domain)]
    diagnostic = ""
    match = re.search(r"^Diagnostic-Code:\s*(.+)$", text, re.IGNORECASE | re.MULTILINE)
    if match:
        diagnostic = match.group(1).strip()
    return BounceReport(recipients[:20], permanent, ours[:20], diagnostic[:300])


# ---------------------------------------------------------------------------------------------
# The inbound pipeline
# ---------------------------------------------------------------------------------------------

@dataclass
class IngestResult:
    """What became of one inbound message (the contract's answer of POST /inbound/email)."""

    status: str
    inbound_id: Optional[int] = None
    conversation_id: Optional[int] = None
    customer_id: Optional[int] = None
    case_reference: Optional[str] = None
    reason: Optional[str] = None

    def as_dict(self) -> dict:
        body = {"status": self.status, "conversation_id": self.conversation_id,
                "customer_id": self.customer_id}
        if self.case_reference:
            body["case_reference"] = self.case_reference
        if self.reason:
            body["reason"] = self.reason
        return body


def dedupe_key(message_id: Optional[str], raw: bytes) -> str:
    """Return the key that makes ingestion idempotent: the Message-ID, else the content."""
    basis = b"mid:" + message_id.encode("utf-8", "replace") if message_id else b"raw:" + raw
    return hashlib.sha256(basis).hexdigest()


def _result_for(inbound: InboundEmail, status: Optional[str] = None,
                conversation: Optional[Conversation] = None) -> IngestResult:
    if conversation is None and inbound.conversation_id:
        conversation = db.session.get(Conversation, inbound.conversation_id)
    case_reference = conversation.case.reference if conversation is not None and conversation.case else None
    return IngestResult(status or inbound.status, inbound.id, inbound.conversation_id, inbound.customer_id,
                        case_reference,
                        inbound.reason if (status or inbound.status) in ("quarantined", "auto_reply") else None)


@dataclass
class Arrival:
    """One raw message as it came in, with its SMTP envelope when there was one."""

    raw: bytes
    envelope_from: Optional[str] = None  # "" for the null sender, None when unknown
    envelope_to: tuple = ()


def receive(raw: bytes, *, source: str, envelope_from: Optional[str] = None,
            envelope_to: Iterable[str] = (), commit: bool = True) -> IngestResult:
    """Store a raw message, then process it: the one way in for SMTP, HTTP and files.

    With `commit` (SMTP and HTTP, which answer the sender), the raw bytes are committed before
    processing starts and the result after. `envelope_from` is the SMTP MAIL FROM ("" for the
    null sender, None when unknown).
    """
    if not isinstance(raw, (bytes, bytearray)) or not raw:
        raise ValidationFailed("An email message is required", {"message": ["empty"]})
    arrival = Arrival(bytes(raw), envelope_from, tuple(envelope_to))
    return receive_many([arrival], source=source, commit=commit)[0]


def receive_many(arrivals: list, *, source: str, commit: bool = True) -> list:
    """Store raw messages, then process them together; return one IngestResult per arrival, in order.

    The file import hands over a hundred messages at a time and commits after each batch: until
    then the file itself is the safe copy, and importing it again is idempotent. Empty messages
    must be left out by the caller (`receive` refuses them).
    """
    now = utcnow()
    rows = []
    for arrival in arrivals:
        message_id = message_id_of(arrival.raw)
        rows.append(dict(
            dedupe_key=dedupe_key(message_id, arrival.raw), message_id_header=message_id,
            content_sha256=hashlib.sha256(arrival.raw).hexdigest(), raw=arrival.raw, size=len(arrival.raw),
            source=source, envelope_from=None if arrival.envelope_from is None else arrival.envelope_from[:500],
            envelope_to=",".join(arrival.envelope_to)[:5000] or None, status="received", details={},
            attempts=0, received_at=now,
        ))
    unique = {}
    for row in rows:
        unique.setdefault(row["dedupe_key"], row)
    # INSERT ... ON CONFLICT DO NOTHING: the same message arriving twice at once (an MTA retry
    # racing the first try) cannot fail the transaction; the loser just finds the winner's row.
    insert = postgresql_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stored = dict(db.session.execute(
        insert(InboundEmail).on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(InboundEmail.dedupe_key, InboundEmail.id), list(unique.values())).all())
    to_process, earlier = [], []
    for key, row in unique.items():
        if key in stored:
            to_process.append(_stored_row(stored[key], row))
    if len(stored) < len(unique):
        for existing in db.session.scalars(select(InboundEmail).where(
                InboundEmail.dedupe_key.in_([k for k in unique if k not in stored]))):
            if existing.status == "received":
                # Stored earlier but not processed (a killed listener, a database outage): whoever sees
                # it next processes it. If its first taker is still at work, process_many finds out.
                to_process.append(existing)
            else:
                earlier.append(existing)
    if commit:
        db.session.commit()
    keys = [inbound.dedupe_key for inbound in to_process]
    results = dict(zip(keys, process_many(to_process, commit=commit)))
    for existing in earlier:
        results[existing.dedupe_key] = _result_for(existing, "duplicate")
    answers, seen = [], set()
    for row in rows:
        result = results[row["dedupe_key"]]
        if row["dedupe_key"] in seen:  # the same message twice in one batch
            result = replace(result, status="duplicate", reason=None)
        seen.add(row["dedupe_key"])
        answers.append(result)
    return answers


def _stored_row(inbound_id: int, values: dict) -> InboundEmail:
    """Return the just-inserted row as a session object without reading it (and its raw bytes) back."""
    inbound = InboundEmail(id=inbound_id, reason=None, from_address=None, subject=None, full_text=None,
                           customer_id=None, conversation_id=None, stored_message_id=None, processed_at=None,
                           **values)
    make_transient_to_detached(inbound)
    db.session.add(inbound)
    return inbound


def process(inbound: InboundEmail, commit: bool = True) -> IngestResult:
    """Process one stored message; anything it cannot understand is quarantined."""
    return process_many([inbound], commit=commit)[0]


def process_many(inbounds: list, commit: bool = True) -> list:
    """Process stored messages in one savepoint and one flush; return their results in order.

    If any message of a batch fails, the batch is undone and each message is run again alone,
    so one bad message is quarantined and the others are processed as usual.
    """
    if not inbounds:
        return []
    # Counting the attempt is the first write and the claim: on SQLite it takes the write lock before
    # ids are reserved; on PostgreSQL a second taker of the same message waits here for the first to
    # finish and then finds it processed. Only rows still unprocessed are taken.
    claimed = set(db.session.scalars(
        update(InboundEmail).where(InboundEmail.id.in_([inbound.id for inbound in inbounds]),
                                   InboundEmail.status == "received")
        .values(attempts=InboundEmail.attempts + 1).returning(InboundEmail.id)
        .execution_options(synchronize_session=False)).all())
    if len(claimed) < len(inbounds):
        taken = [inbound for inbound in inbounds if inbound.id not in claimed]
        for inbound in taken:
            db.session.refresh(inbound)
        done = {inbound.id: _result_for(inbound, "duplicate") for inbound in taken}
        rest = process_many([inbound for inbound in inbounds if inbound.id in claimed], commit=commit) \
            if claimed else []
        results = iter(rest)
        return [done[inbound.id] if inbound.id in done else next(results) for inbound in inbounds]
    ids = [inbound.id for inbound in inbounds]
    for inbound in inbounds:
        set_committed_value(inbound, "attempts", (inbound.attempts or 0) + 1)
    try:
        # No autoflush: the batch's new rows are written by the one flush at the end; look-ups go
        # through the batch's ThreadIndex, which knows both the stored rows and the new ones.
        with db.session.begin_nested(), db.session.no_autoflush, write_batch(len(inbounds)):
            results = _process_batch(inbounds)
            _mark_processed(inbounds)
            db.session.flush()
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the messages are kept
        if len(inbounds) > 1:
            log.info("a batch of %d inbound emails failed (%s); processing them one by one", len(inbounds), exc)
            results = [process_many([db.session.get(InboundEmail, inbound_id)], commit=False)[0]
                       for inbound_id in ids]
            if commit:
                db.session.commit()
            return results
        log.warning("inbound email %s quarantined: %s", ids[0], exc, exc_info=not isinstance(exc, DomainError))
        inbound = db.session.get(InboundEmail, ids[0])
        reason = exc.message if isinstance(exc, DomainError) else f"{exc.__class__.__name__}: {exc}"
        inbound.status = "quarantined"
        inbound.reason = f"could not process: {reason}"[:2000]
        results = [IngestResult("quarantined", ids[0], reason=inbound.reason)]
        _mark_processed([inbound])
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return results


def _mark_processed(inbounds: list) -> None:
    processed_at = utcnow()
    for inbound in inbounds:
        inbound.processed_at = processed_at
        # Every processed row then updates the same columns, so a batch is one executemany
        # instead of a statement for each run of rows that happened to change different ones.
        for name in _PROCESSED_COLUMNS:
            if name in inbound.__dict__:
                flag_modified(inbound, name)


_PROCESSED_COLUMNS = ("status", "reason", "details", "from_address", "subject", "full_text", "customer_id",
                      "conversation_id", "stored_message_id")


def reprocess(inbound: InboundEmail) -> IngestResult:
    """Run a stored (quarantined or stuck) message through the pipeline again. Commits."""
    if inbound.status not in ("quarantined", "received"):
        raise Conflict(f"Message {inbound.id} is {inbound.status}; only quarantined messages are reprocessed")
    inbound.status = "received"
    inbound.reason = None
    db.session.flush()  # the claim in process_many reads the status from the database
    return process(inbound)


def sweep_unprocessed(older_than: timedelta = STUCK_AFTER, batch: int = 100) -> int:
    """Process stored messages nobody finished (a killed listener, a database outage). Commits; returns how many."""
    done, after = 0, 0
    cutoff = utcnow() - older_than
    while True:
        ids = db.session.scalars(select(InboundEmail.id).where(
            InboundEmail.status == "received", InboundEmail.received_at < cutoff, InboundEmail.id > after)
            .order_by(InboundEmail.id).limit(batch)).all()
        if not ids:
            return done
        rows = db.session.scalars(select(InboundEmail).where(InboundEmail.id.in_(ids))
                                  .order_by(InboundEmail.id)).all()
        done += sum(1 for result in process_many(rows, commit=True) if result.status != "duplicate")
        db.session.expunge_all()
        after = ids[-1]


@periodic_job(crontab(minute="*"))
def sweep_unprocessed_email() -> int:
    """Periodic job: process inbound mail that was stored but never processed."""
    return sweep_unprocessed()


def _quarantine(inbound: InboundEmail, reason: str) -> IngestResult:
    inbound.status = "quarantined"
    inbound.reason = reason
    return IngestResult("quarantined", inbound.id, customer_id=inbound.customer_id, reason=reason)


@dataclass
class _Readable:
    """A parsed message that passed the checks and waits for its thread or a new conversation."""

    inbound: InboundEmail
    parsed: ParsedEmail
    recipients: list
    automatic: Optional["AutoSignal"]
    route: Optional["EmailRoute"] = None  # where it goes if it is a new enquiry (worked out once)


def _process_batch(inbounds: list) -> list:
    """Parse every message, look up what they refer to in a few queries, then settle each in order."""
    readable = [_read(inbound) for inbound in inbounds]
    index = ThreadIndex.load([item for item in readable if isinstance(item, _Readable)])
    # A message that refers to nothing is a new enquiry: when it routes to a service it opens a
    # case, so those case numbers are taken in one go (the rest one at a time, as they come).
    new_enquiries = [item for item in readable if isinstance(item, _Readable) and item.automatic is None
                     and not _thread_ids(item.parsed) and not CASE_REF_RE.search(item.parsed.subject)
                     and not _tokens(item.parsed, item.recipients)]
    for item in new_enquiries:
        item.route = route_email(item.parsed, item.recipients)
    current_batch().expect(Case, sum(1 for item in new_enquiries if item.route.service is not None))
    token = _thread_index.set(index)
    results = list(readable)
    # Settled in the order they were written (Date, then Message-ID), so a batch that holds a
    # reply and the mail it answers threads them directly, whatever order they came in.
    order = sorted((i for i, item in enumerate(readable) if isinstance(item, _Readable)),
                   key=lambda i: _written_key(readable[i].parsed, i))
    try:
        for i in order:
            results[i] = _settle(readable[i])
        if index.out_of_order:
            db.session.flush()
            for conversation_id in sorted(index.out_of_order):
                _renumber(conversation_id)
        return results
    finally:
        _thread_index.reset(token)


_NO_DATE = datetime.max.replace(tzinfo=None)


def _written_key(parsed: ParsedEmail, position: int) -> tuple:
    """Return the sort key of a message by when it was written (undated ones last, as they came)."""
    date = _sent_at(parsed)
    return (date.replace(tzinfo=None) if date else _NO_DATE, parsed.message_id or "", position)


def _sent_at(parsed: ParsedEmail) -> Optional[datetime]:
    """Return the Date of a message in UTC, unless it claims to be from the future."""
    if parsed.date is None:
        return None
    try:
        date = parsed.date.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None
    return date if date <= utcnow() + timedelta(days=1) else None


def _read(inbound: InboundEmail):
    """Parse and check one message: a _Readable, or the IngestResult of a quarantined one."""
    config = current_app.config
    if inbound.size > config["EMAIL_MAX_BYTES"]:
        headers = BytesHeaderParser(policy=READ_POLICY).parsebytes(inbound.raw[:256 * 1024])
        inbound.subject = _clean_line(header_text(headers, "Subject"), 300) or None
        senders = _addresses(headers, "From")
        inbound.from_address = senders[0][1][:254] if senders else None
        return _quarantine(inbound, f"message of {inbound.size} bytes is over the limit of "
                                    f"{config['EMAIL_MAX_BYTES']} bytes")
    parsed = parse_email(inbound.raw, max_attachment_bytes=config["EMAIL_MAX_ATTACHMENT_BYTES"])
    inbound.subject = parsed.subject[:300] or None
    inbound.from_address = parsed.from_address
    inbound.full_text = parsed.text[:MAX_BODY_CHARS * 5]
    details = {}
    if parsed.defects:
        details["defects"] = parsed.defects
    if parsed.withheld:
        details["withheld"] = parsed.withheld
    inbound.details = details
    recipients = list(dict.fromkeys([r for r in (inbound.envelope_to or "").lower().split(",") if r]
                                    + parsed.recipients))
    automatic = detect_automatic(parsed, inbound.envelope_from, config["CRM_MAIL_DOMAIN"],
                                 [config["CRM_MAIL_FROM"]])
    if automatic is None:
        if not parsed.from_address:
            what = f"From {parsed.from_raw!r}" if parsed.from_raw else "no From"
            return _quarantine(inbound, f"missing or malformed sender ({what})")
        if not parsed.text.strip() and not parsed.attachments and not parsed.subject:
            return _quarantine(inbound, "no readable content: no subject, body or attachments")
    return _Readable(inbound, parsed, recipients, automatic)


def _settle(item: _Readable) -> IngestResult:
    """Thread a readable message into its conversation, or open a new one."""
    inbound, parsed = item.inbound, item.parsed
    if item.automatic is not None:
        return _handle_automatic(inbound, parsed, item.automatic)
    customers = _thread_index.get().customers  # every sender of the batch was looked up in it
    customer = resolve_customer(parsed.from_name or None, parsed.from_address,
                                owners={"email": customers[parsed.from_address]})
    customers[parsed.from_address] = customer
    inbound.customer_id = customer.id
    if reserved_mail_domain(parsed.from_address):
        _mark_undeliverable(customer, parsed.from_address, "a special-use domain: no mail can reach it")
    index = _thread_index.get()
    unknown = [mid for mid in _thread_ids(parsed) if mid not in index.by_message_id]
    conversation, note = find_thread(parsed, customer, item.recipients)
    if conversation is not None and conversation.channel == CHANNEL:
        conversation = _join_threads(conversation, _threads_to_join(parsed, customer, conversation))
    elif conversation is None:
        waiting = _threads_to_join(parsed, customer, None)
        if waiting:  # replies that came before this message: it becomes their thread's start
            item.route = item.route or route_email(parsed, item.recipients)
            waiting = [c for c in waiting if _may_take(item.route.service, c)]
        if waiting:
            conversation = _join_threads(waiting[0], waiting[1:])
    if conversation is not None:
        case = conversation.case
        if case is not None and case.status in lifecycle.DONE_STATUSES:
            if lifecycle.can_reopen(case):
                reopen_case(case, reason="The resident replied by email")
            else:
                note = f"Follows closed case {case.reference}"
                conversation = None
    if conversation is not None:
        _append_inbound(inbound, parsed, conversation, customer)
        inbound.status = "threaded"
    else:
        conversation = _new_enquiry(inbound, parsed, customer, item.recipients, note, item.route)
        inbound.status = "ingested"
    _after_append(inbound, parsed, conversation, unknown)
    return _result_for(inbound, conversation=conversation)


def _after_append(inbound: InboundEmail, parsed: ParsedEmail, conversation: Conversation, unknown: list) -> None:
    """Remember what this message refers to that has not arrived, and file automatic replies waiting for it."""
    index = _thread_index.get()
    domain = current_app.config["CRM_MAIL_DOMAIN"]
    for mid in unknown:
        if mid != parsed.message_id and not is_our_message_id(mid, domain):
            stage(EmailThreadRef(referenced_id=mid, conversation_id=conversation.id), flush=False)
            index.waiting.setdefault(mid, []).append((conversation, None))
    _take_waiting(conversation, parsed.message_id)


def _take_waiting(conversation: Conversation, message_id: Optional[str]) -> Conversation:
    """Join the sender's threads waiting for a message just filed, and file automatic replies waiting for it."""
    index = _thread_index.get()
    if not message_id:
        return conversation
    index.load_waiting({message_id})  # read already, unless filed late (an automatic reply from an earlier batch)
    refs = list(index.waiting.get(message_id, ()))
    if not refs:
        return conversation
    customer = live_customer(conversation.customer)
    others = []
    for candidate, _ in refs:
        candidate = _live_conversation(candidate)
        if (candidate is not None and candidate is not conversation and candidate not in others
                and candidate.channel == CHANNEL and _belongs(candidate, customer)):
            others.append(candidate)
    conversation = _join_threads(conversation, others)
    for _, inbound_id in refs:
        waiting = db.session.get(InboundEmail, inbound_id) if inbound_id else None
        if waiting is not None and waiting.status == "auto_reply" and waiting.conversation_id is None \
                and (not waiting.from_address or _belongs(conversation, waiting.from_address)):
            late = parse_email(waiting.raw, max_attachment_bytes=current_app.config["EMAIL_MAX_ATTACHMENT_BYTES"])
            _file_automatic(waiting, late, conversation, bounce=False)
            conversation = _take_waiting(conversation, late.message_id)
    return conversation


def _mark_undeliverable(customer: Customer, address: str, reason: str) -> None:
    """Mark one of the customer's email identities as one we cannot send to."""
    for identity in live_customer(customer).identities:
        if identity.kind == "email" and identity.value == address and not identity.undeliverable:
            identity.undeliverable = True
            identity.undeliverable_reason = reason[:500]


class ThreadIndex:
    """What one batch of messages looks up, read in a few queries before any of them is settled.

    Senders' customers, conversations by Message-ID, cases by reference, conversations by token
    and recent acknowledgements per address are read for the whole batch at once; the rows the
    batch then writes (not flushed until its end) are added as they are made, so a reply to a
    message earlier in the same batch finds its thread exactly as it would a stored one.
    """

    def __init__(self):
        self.customers = {}  # email address -> live customer holding it, or None
        self.by_message_id = {}  # Message-ID (ours and theirs) -> conversation
        self.cases = {}  # case reference -> case, or None
        self.case_conversations = {}  # case id -> its latest email conversation, or None
        self.by_token = {}  # conversation token -> email conversation, or None
        self.recent_acks = {}  # address -> acknowledgements sent to it in the last hour
        self.threads = {}  # id of a conversation new in this batch -> [(Message-ID, direction)]
        self.locked = set()  # ids of stored conversations locked for this batch: it numbers their messages
        # Message-ID not seen yet -> [(conversation, None) or (None, inbound id of an automatic reply)]
        # that refer to it: joined to (or filed under) it when it arrives.
        self.waiting = {}
        self.waiting_loaded = set()  # Message-IDs whose stored waiting rows are in `waiting`
        self.latest_sent = {}  # conversation id -> Date of its latest dated inbound message
        self.out_of_order = set()  # conversations whose messages must be numbered again by date

    @classmethod
    def load(cls, items: list) -> "ThreadIndex":
        index = cls()
        addresses = {item.parsed.from_address for item in items if item.parsed.from_address}
        message_ids = {mid for item in items for mid in _thread_ids(item.parsed)}
        references = {f"CAS-{ref}".upper() for item in items for ref in CASE_REF_RE.findall(item.parsed.subject)}
        tokens = {token for item in items for token in _tokens(item.parsed, item.recipients)}
        # Advisory locks per sender first (PostgreSQL), before anything is read: two sessions taking
        # a reply and the mail it answers (or two first mails of a new sender) at the same moment would
        # each miss the other's uncommitted rows.
        _lock_senders(addresses)
        if addresses:
            index.customers = dict.fromkeys(addresses)
            for identity in db.session.scalars(
                    select(CustomerIdentity)
                    .options(joinedload(CustomerIdentity.customer).selectinload(Customer.identities))
                    .where(CustomerIdentity.kind == "email", CustomerIdentity.value.in_(addresses))):
                index.customers[identity.value] = live_customer(identity.customer)
            index.recent_acks = dict.fromkeys(addresses, 0)
            index.recent_acks.update(db.session.execute(
                select(OutboundEmail.to_address, func.count(OutboundEmail.id))
                .where(OutboundEmail.to_address.in_(addresses), OutboundEmail.kind == "ack",
                       OutboundEmail.created_at >= utcnow() - ACK_WINDOW)
                .group_by(OutboundEmail.to_address)).all())
        if any(item.parsed.message_id for item in items):
            index.load_waiting({item.parsed.message_id for item in items if item.parsed.message_id})
        if message_ids:
            pairs = db.session.execute(select(Message.email_message_id, Message.conversation_id)
                                       .where(Message.email_message_id.in_(message_ids))).all()
            conversations = _conversations_by_id({conversation_id for _, conversation_id in pairs})
            index.by_message_id = {mid: conversations[conversation_id] for mid, conversation_id in pairs}
        if references:
            index.cases = dict.fromkeys(references)
            cases = db.session.scalars(select(Case).options(joinedload(Case.customer))
                                       .where(Case.reference.in_(references))).all()
            index.cases.update({case.reference: case for case in cases})
            index.case_conversations = dict.fromkeys(case.id for case in cases)
            for conversation in db.session.scalars(
                    select(Conversation).options(joinedload(Conversation.customer))
                    .where(Conversation.case_id.in_(index.case_conversations), Conversation.channel == CHANNEL,
                           Conversation.merged_into_id.is_(None))
                    .order_by(Conversation.id)):
                index.case_conversations[conversation.case_id] = conversation  # the latest wins
        if tokens:
            index.by_token = dict.fromkeys(tokens)
            index.by_token.update({c.token: c for c in db.session.scalars(
                select(Conversation).options(joinedload(Conversation.customer))
                .where(Conversation.token.in_(tokens), Conversation.channel == CHANNEL))})
        index._lock_candidates()
        return index

    def _lock_candidates(self) -> None:
        """Lock the stored conversations the batch may write to, so it can number their messages itself.

        Each reply would otherwise take its seq with an UPDATE ... RETURNING of its own. Rows are
        locked in id order (two batches never wait on each other in a cycle) and re-read, so the
        seq the batch counts from is the current one; SQLite's batch holds the write lock already.
        """
        candidates = {c.id for c in self.by_message_id.values()}
        candidates |= {c.id for c in self.case_conversations.values() if c is not None}
        candidates |= {c.id for c in self.by_token.values() if c is not None}
        candidates |= {c.id for refs in self.waiting.values() for c, _ in refs if c is not None}
        if candidates:
            rows = db.session.execute(select(Conversation.id, Conversation.last_seq)
                                      .where(Conversation.id.in_(candidates)).order_by(Conversation.id)
                                      .with_for_update()).all()
            for conversation_id, last_seq in rows:
                set_committed_value(db.session.get(Conversation, conversation_id), "last_seq", last_seq)
            self.locked = {conversation_id for conversation_id, _ in rows}
            self.latest_sent.update(db.session.execute(
                select(Message.conversation_id, func.max(Message.sent_at))
                .where(Message.conversation_id.in_(candidates), Message.sent_at.is_not(None),
                       Message.direction == "inbound").group_by(Message.conversation_id)).all())

    def load_waiting(self, message_ids: set) -> None:
        """Read the stored threads and automatic replies that wait for these Message-IDs."""
        message_ids = message_ids - self.waiting_loaded
        if not message_ids:
            return
        self.waiting_loaded |= message_ids
        refs = db.session.execute(select(EmailThreadRef.referenced_id, EmailThreadRef.conversation_id,
                                         EmailThreadRef.inbound_id)
                                  .where(EmailThreadRef.referenced_id.in_(message_ids))).all()
        waiting = _conversations_by_id({r.conversation_id for r in refs if r.conversation_id})
        for referenced_id, conversation_id, inbound_id in refs:
            conversation = _live_conversation(waiting.get(conversation_id)) if conversation_id else None
            if conversation is not None or inbound_id:
                self.waiting.setdefault(referenced_id, []).append((conversation, inbound_id))

    def added_conversation(self, conversation: Conversation) -> None:
        self.by_token[conversation.token] = conversation
        self.threads[conversation.id] = []
        if conversation.case is not None:
            self.case_conversations[conversation.case.id] = conversation

    def added_case(self, case: Case, conversation: Conversation) -> None:
        self.cases[case.reference] = case
        self.case_conversations[case.id] = conversation

    def added_message(self, conversation: Conversation, message: Message) -> None:
        if message.email_message_id:
            self.by_message_id[message.email_message_id] = conversation
            if conversation.id in self.threads:
                self.threads[conversation.id].append((message.email_message_id, message.direction))
        if message.sent_at is not None and message.direction == "inbound":
            latest = self.latest_sent.get(conversation.id)
            if latest is not None and message.sent_at < latest:
                self.out_of_order.add(conversation.id)  # numbered again when the batch ends
            else:
                self.latest_sent[conversation.id] = message.sent_at

    def joined(self, winner: Conversation, losers: list) -> None:
        """Point everything the batch knows about the joined conversations at the one that holds them now."""
        gone = {c.id for c in losers}
        for mapping in (self.by_message_id, self.by_token, self.case_conversations):
            for key, conversation in mapping.items():
                if conversation is not None and conversation.id in gone:
                    mapping[key] = winner
        for key, refs in self.waiting.items():
            self.waiting[key] = [(winner if c is not None and c.id in gone else c, i) for c, i in refs]
        for conversation_id in gone | {winner.id}:
            self.threads.pop(conversation_id, None)  # flushed: thread_headers reads the database now
        self.locked |= gone | {winner.id}
        dates = [self.latest_sent.get(i) for i in gone | {winner.id}]
        self.latest_sent[winner.id] = max((d for d in dates if d is not None), default=None)
        self.out_of_order.add(winner.id)


_thread_index: ContextVar[Optional[ThreadIndex]] = ContextVar("email_thread_index", default=None)
ACK_WINDOW = timedelta(hours=1)


def _lock_senders(addresses: set) -> None:
    """Serialise the threading of each sender's mail across sessions (PostgreSQL; SQLite has one writer)."""
    if not addresses or db.session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({int.from_bytes(hashlib.sha256(a.encode()).digest()[:8], "big", signed=True) for a in addresses})
    db.session.execute(select(func.count()).select_from(
        select(func.pg_advisory_xact_lock(func.unnest(keys))).subquery()))


def _live_conversation(conversation: Optional[Conversation]) -> Optional[Conversation]:
    """Follow merged_into links to the conversation that holds a joined thread now."""
    seen = set()
    while conversation is not None and conversation.merged_into_id and conversation.id not in seen:
        seen.add(conversation.id)
        conversation = db.session.get(Conversation, conversation.merged_into_id)
    return conversation


def _threads_to_join(parsed: ParsedEmail, customer: Customer, conversation: Optional[Conversation]) -> list:
    """Return the sender's other email threads this message links: ones it refers to, ones waiting for it."""
    index = _thread_index.get()
    found = [index.by_message_id[mid] for mid in _thread_ids(parsed) if mid in index.by_message_id]
    if parsed.message_id:
        found += [c for c, _ in index.waiting.get(parsed.message_id, ()) if c is not None]
    related = []
    for candidate in found:
        candidate = _live_conversation(candidate)
        if (candidate is None or candidate is conversation or candidate in related
                or candidate.channel != CHANNEL or not _belongs(candidate, customer)):
            continue  # the sender must match the thread's customer, as for mail in order
        related.append(candidate)
    return related


def _sort_key(sent_at, created_at, direction, message_id, row_id) -> tuple:
    # Mail written in the same second stays in the order it came (Date has no finer grain).
    return (sent_at or created_at, row_id)


def _join_threads(conversation: Conversation, others: list) -> Conversation:
    """Join email threads that turned out to be one; return the one that holds them all.

    The thread whose first message was written earliest keeps its row; the others' messages,
    contacts and sends move to it (numbered again by date when the batch ends), their cases are
    merged into its case through the cases service (both histories kept, audited), and each
    joined conversation points at it, so its reply token still leads to the thread.
    """
    others = [other for other in others if _may_join(conversation, other)]
    if not others:
        return conversation
    db.session.flush()
    everyone = [conversation] + others
    ids = sorted(c.id for c in everyone)
    db.session.execute(select(Conversation.id).where(Conversation.id.in_(ids)).order_by(Conversation.id)
                       .with_for_update()).all()
    starts = {}
    for row in db.session.execute(select(Message.conversation_id, Message.sent_at, Message.created_at,
                                         Message.direction, Message.email_message_id, Message.id)
                                  .where(Message.conversation_id.in_(ids))):
        key = _sort_key(*row[1:])
        starts[row[0]] = min(starts.get(row[0], key), key)
    winner = min(everyone, key=lambda c: (c.id not in starts, starts.get(c.id, ()), c.id))
    losers = [c for c in everyone if c is not winner]
    loser_ids = [c.id for c in losers]
    # seq = -id is unique: the moved messages cannot collide before they are numbered again.
    db.session.execute(update(Message).where(Message.conversation_id.in_(loser_ids))
                       .values(conversation_id=winner.id, seq=-Message.id)
                       .execution_options(synchronize_session=False))
    for model in (Contact, InboundEmail, OutboundEmail, EmailThreadRef):
        db.session.execute(update(model).where(model.conversation_id.in_(loser_ids))
                           .values(conversation_id=winner.id).execution_options(synchronize_session=False))
    target = _live_case(winner.case)
    for loser in losers:
        case = _live_case(loser.case)
        if case is None or (target is not None and case.id == target.id):
            continue
        if target is None:
            target = case
            continue
        source, into = (target, case) if target.status == "closed" and case.status != "closed" else (case, target)
        if into.status != "closed":
            merge_cases(source, into, None, reason="An email thread found to be one with this case's thread")
            target = into
    now = utcnow()
    for loser in losers:
        loser.merged_into_id = winner.id
        loser.status = "closed"
        loser.closed_at = loser.closed_at or now
        if winner.assignee_id is None and loser.assignee_id is not None:
            winner.assignee_id = loser.assignee_id
    if target is not None:
        winner.case = target
        for loser in losers:
            loser.case = target
    if winner.status in ("resolved", "closed") and any(c.status not in ("resolved", "closed") for c in losers):
        winner.status, winner.closed_at = ("assigned" if winner.assignee_id else "open"), None
    audit(None, "conversation.join", "conversation", winner.id, joined=loser_ids,
          case=target.reference if target is not None else None)
    db.session.flush()
    for loser in losers:
        db.session.expire(loser)
    db.session.expire(winner)
    _thread_index.get().joined(winner, losers)
    return winner


def _may_join(one: Conversation, other: Conversation) -> bool:
    """Say whether two threads may become one: never if that would open a sensitive service's case to others."""
    cases = [_live_case(one.case), _live_case(other.case)]
    if not any(case is not None and case.service is not None and case.service.sensitive for case in cases):
        return True
    return all(case is not None for case in cases) and cases[0].service_id == cases[1].service_id


def _may_take(service: Optional[Service], conversation: Conversation) -> bool:
    """Say whether a late first message bound for `service` may start a thread already stored."""
    case = _live_case(conversation.case)
    if not ((service is not None and service.sensitive) or (case is not None and case.service.sensitive)):
        return True
    return case is not None and service is not None and case.service_id == service.id


def _live_case(case: Optional[Case]) -> Optional[Case]:
    seen = set()
    while case is not None and case.merged_into_id and case.id not in seen:
        seen.add(case.id)
        case = db.session.get(Case, case.merged_into_id)
    return case


def _renumber(conversation_id: int) -> None:
    """Number a conversation's messages again in the order they were written."""
    rows = db.session.execute(select(Message.id, Message.sent_at, Message.created_at, Message.direction,
                                     Message.email_message_id)
                              .where(Message.conversation_id == conversation_id)).all()
    rows.sort(key=lambda r: _sort_key(r.sent_at, r.created_at, r.direction, r.email_message_id, r.id))
    table = Message.__table__
    db.session.execute(update(table).where(table.c.conversation_id == conversation_id).values(seq=-table.c.id))
    db.session.execute(update(table).where(table.c.id == bindparam("row_id")).values(seq=bindparam("new_seq")),
                       [{"row_id": r.id, "new_seq": n} for n, r in enumerate(rows, start=1)])
    first = db.session.scalar(select(InboundEmail.subject).where(InboundEmail.stored_message_id == rows[0].id)) \
        if rows else None
    values = {"last_seq": len(rows)}
    if first:
        values["subject"] = first  # the thread is named after the mail that started it
    db.session.execute(update(Conversation).where(Conversation.id == conversation_id).values(**values)
                       .execution_options(synchronize_session=False))
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is not None:
        db.session.expire(conversation, ["last_seq", "subject", "messages"])
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Message) and obj.__dict__.get("conversation_id") == conversation_id:
            db.session.expire(obj, ["seq"])


def _conversations_by_id(ids: set) -> dict:
    if not ids:
        return {}
    return {c.id: c for c in db.session.scalars(
        select(Conversation).options(joinedload(Conversation.customer), joinedload(Conversation.case))
        .where(Conversation.id.in_(ids)))}


def _thread_ids(parsed: ParsedEmail) -> list:
    """Return the Message-IDs a message refers to, the most direct first."""
    return list(dict.fromkeys(parsed.in_reply_to + list(reversed(parsed.references))))[:MAX_THREAD_IDS]


def _tokens(parsed: ParsedEmail, recipients: Iterable[str]) -> list:
    """Return the conversation tokens a message carries: [#TOKEN] in the subject, reply+TOKEN@ addresses."""
    tokens = [t.lower() for t in SUBJECT_TOKEN_RE.findall(parsed.subject)]
    domain = current_app.config["CRM_MAIL_DOMAIN"].lower()
    for address in recipients:
        match = REPLY_ADDRESS_RE.match(address)
        if match and match.group(2).lower() == domain:
            tokens.append(match.group(1).lower())
    return list(dict.fromkeys(tokens))


def _handle_automatic(inbound: InboundEmail, parsed: ParsedEmail, signal: AutoSignal) -> IngestResult:
    """Record an automatic message without answering it; a bounce marks the address undeliverable."""
    details = dict(inbound.details or {})
    details["automatic"] = signal.reasons
    inbound.status = "auto_reply"
    inbound.reason = "; ".join(signal.reasons)[:2000]
    domain = current_app.config["CRM_MAIL_DOMAIN"]
    conversation = None
    if signal.bounce:
        report = read_bounce(inbound.raw, parsed, domain)
        details["bounce"] = {"recipients": report.recipients, "permanent": report.permanent,
                             "returns": report.our_message_ids, "diagnostic": report.diagnostic}
        conversation = _apply_bounce(report)
    else:
        conversation = _live_conversation(_conversation_by_headers(parsed))
        if conversation is not None and parsed.from_address and not _belongs(conversation, parsed.from_address):
            conversation = None
        if conversation is None:
            # Filed under its thread if the mail it answers arrives later (mail is not always in order).
            index = _thread_index.get()
            for mid in _thread_ids(parsed):
                if mid not in index.by_message_id and not is_our_message_id(mid, domain):
                    stage(EmailThreadRef(referenced_id=mid, inbound_id=inbound.id), flush=False)
                    index.waiting.setdefault(mid, []).append((None, inbound.id))
    inbound.details = details
    if conversation is not None:
        _file_automatic(inbound, parsed, conversation, signal.bounce)
        if not signal.bounce:
            conversation = _take_waiting(conversation, parsed.message_id)
    return _result_for(inbound, conversation=conversation)


def _file_automatic(inbound: InboundEmail, parsed: ParsedEmail, conversation: Conversation, bounce: bool) -> None:
    """Keep an automatic message in its conversation as an internal entry."""
    label = "Delivery failure" if bounce else "Automatic reply"
    body = f"{label} received: {parsed.subject or '(no subject)'}\n\n{trim_reply(parsed.text)[:4000]}"
    append_message(conversation, "system", body, direction="inbound", internal=True,
                   email_message_id=parsed.message_id, sent_at=_sent_at(parsed))
    inbound.conversation_id = conversation.id
    inbound.customer_id = conversation.customer_id


def _apply_bounce(report: BounceReport) -> Optional[Conversation]:
    """Mark the bounced send and, when the failure is permanent, the address it went to."""
    if not report.our_message_ids:
        return None  # a bounce that returns none of our mail cannot speak for our residents
    db.session.flush()  # rare: let the look-up see sends written earlier in this batch
    sends = db.session.scalars(select(OutboundEmail).where(
        OutboundEmail.message_id_header.in_(report.our_message_ids))).all()
    conversation = None
    for send in sends:
        if report.recipients and send.to_address.lower() not in report.recipients:
            continue
        conversation = send.conversation
        reason = f"bounced: {report.diagnostic or ('permanent failure' if report.permanent else 'delayed')}"
        if report.permanent:
            send.status = "bounced"
            send.last_error = reason[:2000]
            send.stored_message.delivery_status = "bounced"
            send.stored_message.delivery_error = reason[:2000]
            identity = db.session.scalar(select(CustomerIdentity).where(
                CustomerIdentity.kind == "email", CustomerIdentity.value == send.to_address.lower()))
            if identity is not None:
                identity.undeliverable = True
                identity.undeliverable_reason = reason[:500]
    return conversation


def _belongs(conversation: Conversation, address_or_customer) -> bool:
    """Say whether the conversation is this sender's (by customer, following merges)."""
    owner = live_customer(conversation.customer)
    if isinstance(address_or_customer, Customer):
        return owner is not None and owner.id == live_customer(address_or_customer).id
    return owner is not None and address_or_customer.lower() in owner.identity_values("email")


def _conversation_by_headers(parsed: ParsedEmail) -> Optional[Conversation]:
    """Return the conversation of the first Message-ID this message refers to that we know."""
    by_message_id = _thread_index.get().by_message_id
    return next((by_message_id[mid] for mid in _thread_ids(parsed) if mid in by_message_id), None)


def find_thread(parsed: ParsedEmail, customer: Customer, recipients: Iterable[str]):
    """Find the conversation a message continues: headers, then subject reference, then reply address.

    Returns (conversation or None, note). Every way must also match the sender, so a stranger
    answering a forwarded thread starts their own conversation instead of joining someone's case.
    """
    note = None
    candidate = _conversation_by_headers(parsed)
    if candidate is not None:
        if _belongs(candidate, customer):
            return candidate, None
        note = "Replied to a thread of another customer; started a new conversation"
    index = _thread_index.get()  # every reference and token of the batch was looked up in it
    for reference in CASE_REF_RE.findall(parsed.subject):
        case = _live_case(index.cases[f"CAS-{reference}".upper()])
        if case is None:
            continue
        if live_customer(case.customer).id != customer.id:
            note = note or f"Quoted case CAS-{reference} of another customer; started a new conversation"
            continue
        if case.id not in index.case_conversations:  # the quoted case was merged into this one
            index.case_conversations[case.id] = db.session.scalar(
                select(Conversation).where(Conversation.case_id == case.id, Conversation.channel == CHANNEL,
                                           Conversation.merged_into_id.is_(None))
                .order_by(Conversation.id.desc()).limit(1))
        conversation = index.case_conversations[case.id]  # its latest email conversation
        if conversation is None:
            conversation = new_conversation(customer, parsed.subject, case=case, status="open",
                                            queue=_email_queue_for(case.service))
        return conversation, None
    for token in _tokens(parsed, recipients):
        conversation = _live_conversation(index.by_token[token])
        if conversation is None:
            continue
        if _belongs(conversation, customer):
            return conversation, None
        note = note or "Used the reply address of another customer's conversation; started a new one"
    return None, note


def new_conversation(customer: Customer, subject: str, *, case=None, status="open", queue=None) -> Conversation:
    """Start an email conversation with its own reply token."""
    conversation = Conversation(
        customer_id=customer.id, channel=CHANNEL, status=status, subject=(subject or "")[:300] or None,
        token=secrets.token_hex(10), queue_id=getattr(queue, "id", None), last_seq=0,
    )
    conversation.customer, conversation.case = customer, case  # staged in a batch: not loaded, so set here
    stage(conversation)
    index = _thread_index.get()
    if index is not None:
        index.added_conversation(conversation)
    return conversation


def append_message(conversation: Conversation, author: str, body: str, *, direction: str,
                   html: Optional[str] = None, author_user=None, internal: bool = False,
                   email_message_id: Optional[str] = None, delivery_status: Optional[str] = None,
                   sent_at: Optional[datetime] = None) -> Message:
    """Add a message with the conversation's next seq; staged (flushed at once outside a batch)."""
    now = utcnow()
    index = _thread_index.get()
    if inspect(conversation).pending or (index is not None and conversation.id in index.locked):
        # New in this batch (nobody else can see it yet) or locked by it: the seq is simply the next number.
        seq = conversation.last_seq = (conversation.last_seq or 0) + 1
        conversation.last_message_at = conversation.updated_at = now
    else:  # one atomic UPDATE ... RETURNING, so concurrent writers never share a seq
        seq = db.session.execute(
            update(Conversation).where(Conversation.id == conversation.id)
            .values(last_seq=Conversation.last_seq + 1, last_message_at=now, updated_at=now)
            .returning(Conversation.last_seq).execution_options(synchronize_session=False)).scalar_one()
        db.session.expire(conversation, ["last_seq", "last_message_at", "updated_at"])
    message = Message(conversation_id=conversation.id, seq=seq, author=author, direction=direction,
                      author_user_id=getattr(author_user, "id", None), body=body or "", html=html,
                      internal=internal, email_message_id=email_message_id,
                      delivery_status=delivery_status, created_at=now, sent_at=sent_at)
    stage(message)
    if index is not None:
        index.added_message(conversation, message)
    return message


def _store_inbound_message(inbound: InboundEmail, parsed: ParsedEmail, conversation: Conversation) -> Message:
    body = trim_reply(parsed.text, parsed.subject)
    if len(body) > MAX_BODY_CHARS:
        body = body[:MAX_BODY_CHARS] + "\n\n[message shortened for display; the full message is kept]"
    if not body.strip() and parsed.attachments:
        body = "(attachments only)"
    message = append_message(conversation, "resident", body, direction="inbound",
                             email_message_id=parsed.message_id, sent_at=_sent_at(parsed))
    inline_images, own_files = {}, []
    for item in parsed.attachments:
        attachment = Attachment(message_id=message.id, filename=item.filename, content_type=item.content_type,
                                size=len(item.data), sha256=hashlib.sha256(item.data).hexdigest(),
                                inline=item.inline, content_id=item.content_id, data=item.data)
        stage(attachment)
        own_files.append(ATTACHMENT_URL.format(id=attachment.id))
        if item.content_id:
            inline_images[item.content_id] = own_files[-1]
    if parsed.html:
        message.html = sanitise_html(parsed.html[:MAX_BODY_CHARS * 5], inline_images, own_files)
    inbound.conversation_id = conversation.id
    inbound.stored_message_id = message.id
    return message


def _append_inbound(inbound, parsed, conversation, customer) -> Message:
    """Add a resident's reply to its conversation, back in front of the agents."""
    message = _store_inbound_message(inbound, parsed, conversation)
    if conversation.status in ("waiting_customer", "resolved", "closed", "ended", "queued"):
        conversation.status = "assigned" if conversation.assignee_id else "open"
        conversation.closed_at = None
    record_contact(customer, CHANNEL, summary=f"Email: {parsed.subject or '(no subject)'}"[:300],
                   notes=message.body[:2000], conversation=conversation, case=conversation.case,
                   occurred_at=message.created_at)
    return message


@dataclass
class EmailRoute:
    """Where a new email enquiry goes."""

    service: Optional[Service]
    category: Optional[str]
    queue: Optional[Queue]


# Routing reads the same services, queues and rules for every message of a batch: they are
# remembered for the batch (crm/batching.py), so an import of a hundred messages reads them once.

def _email_queue_for(service: Optional[Service]) -> Optional[Queue]:
    """Return the email queue of a service, else the general email queue, else any email queue."""
    service_id = service.id if service is not None else None

    def find() -> Optional[Queue]:
        if service_id is not None:
            queue = db.session.scalar(select(Queue).where(Queue.service_id == service_id, Queue.channel == CHANNEL)
                                      .order_by(Queue.id).limit(1))
            if queue is not None:
                return queue
        return db.session.scalar(select(Queue).where(Queue.channel == CHANNEL)
                                 .order_by(Queue.service_id.is_not(None), Queue.id).limit(1))

    return remembered(("email_queue", service_id), find)


def _category_for(service: Service, text: str) -> Optional[str]:
    rules = remembered(("category_rules", service.id), lambda: db.session.execute(
        select(RoutingRule.keywords, RoutingRule.category_code).where(
            RoutingRule.service_id == service.id, RoutingRule.active.is_(True), RoutingRule.keywords.is_not(None))
        .order_by(RoutingRule.position, RoutingRule.id)).all())
    for rule in rules:
        if rule.keywords.strip() and keywords_match(rule, text):
            return rule.category_code
    categories = remembered(("categories", service.id), lambda: [c.code for c in service.categories if c.active])
    for code in categories:
        if code.startswith("general"):
            return code
    return categories[0] if categories else "general_enquiry"


def route_email(parsed: ParsedEmail, recipients: Iterable[str]) -> EmailRoute:
    """Choose the service and queue of a new enquiry: by the address it was sent to, else by rule."""
    text = f"{parsed.subject}\n{parsed.text[:20000]}"
    recipients = [r.lower() for r in recipients]
    if recipients:
        service = remembered(("service_by_address", tuple(recipients)), lambda: db.session.scalar(
            select(Service).where(func.lower(Service.email_address).in_(recipients), Service.active.is_(True))
            .limit(1)))
        if service is not None:
            return EmailRoute(service, _category_for(service, text), _email_queue_for(service))
    rules = remembered(("keyword_rules",), lambda: [
        rule for rule in db.session.scalars(select(RoutingRule).where(
            RoutingRule.active.is_(True), RoutingRule.keywords.is_not(None), RoutingRule.keywords != "")
            .order_by(RoutingRule.position, RoutingRule.id)) if rule.service.active])
    for rule in rules:
        if keywords_match(rule, text):
            return EmailRoute(rule.service, rule.category_code, _email_queue_for(rule.service))
    default = current_app.config.get("EMAIL_DEFAULT_SERVICE")
    service = remembered(("default_service", default), lambda: db.session.scalar(
        select(Service).where(Service.code == default, Service.active.is_(True)))) if default else None
    if service is not None:
        return EmailRoute(service, _category_for(service, text), _email_queue_for(service))
    return EmailRoute(None, None, _email_queue_for(None))


def _new_enquiry(inbound, parsed, customer, recipients, note, route=None) -> Conversation:
    """Open a conversation (and a case, when a service can be chosen) and acknowledge it."""
    where = route or route_email(parsed, recipients)
    subject = parsed.subject or "(no subject)"
    conversation = new_conversation(customer, subject, status="open", queue=where.queue)
    message = _store_inbound_message(inbound, parsed, conversation)
    notes = message.body[:2000] if not note else f"{note}\n\n{message.body[:2000]}"
    case = None
    if where.service is not None:
        # The case is opened first so the contact is written once, already linked and with its
        # outcome (an insert then two updates would also move it between report totals twice).
        description = parsed.text[:20000]
        if note:
            description = f"{note}\n\n{description}"
        case = open_case(customer, where.service.code, where.category, subject[:200], description,
                         source_channel=CHANNEL)
        conversation.case = case
        index = _thread_index.get()
        if index is not None:
            index.added_case(case, conversation)
        if where.queue is None or where.queue.service_id != case.service_id:
            conversation.queue_id = getattr(_email_queue_for(case.service), "id", conversation.queue_id)
    contact = record_contact(customer, CHANNEL, summary=f"Email: {subject}"[:300], notes=notes,
                             category=where.category, conversation=conversation, case=case,
                             outcome="case_raised" if case is not None else "pending",
                             occurred_at=message.created_at)
    if case is not None:
        case.raised_by_contact_id = contact.id
    if note:
        append_message(conversation, "system", note, direction="inbound", internal=True)
    acknowledge(conversation, customer, parsed.from_address, parsed, case)
    return conversation


# ---------------------------------------------------------------------------------------------
# Outbound
# ---------------------------------------------------------------------------------------------

def new_message_id() -> str:
    """Return a fresh Message-ID in our domain (without angle brackets)."""
    return f"{OUR_ID_PREFIX}{secrets.token_hex(12)}@{current_app.config['CRM_MAIL_DOMAIN']}"


def reply_address(conversation: Conversation) -> Optional[str]:
    """Return the conversation's own reply address when reply addresses are on."""
    if not current_app.config.get("EMAIL_REPLY_ADDRESSES"):
        return None
    return f"reply+{conversation.token}@{current_app.config['CRM_MAIL_DOMAIN']}"


def deliverable_address(customer: Customer, preferred: Optional[str] = None) -> Optional[str]:
    """Return an email address of the customer that has not bounced (the preferred one first)."""
    customer = live_customer(customer)
    identities = [i for i in customer.identities
                  if i.kind == "email" and not i.undeliverable and not reserved_mail_domain(i.value)]
    for identity in identities:
        if preferred and identity.value == preferred.lower():
            return identity.value
    return identities[0].value if identities else None


def thread_headers(conversation: Conversation) -> tuple:
    """Return (In-Reply-To, References) for the next message of a conversation."""
    index = _thread_index.get()
    if index is not None and conversation.id in index.threads:  # new in this batch, not flushed yet
        rows = index.threads[conversation.id]
    else:
        rows = db.session.execute(select(Message.email_message_id, Message.direction).where(
            Message.conversation_id == conversation.id, Message.email_message_id.is_not(None))
            .order_by(Message.seq)).all()
    ids = [mid for mid, _ in rows]
    inbound = [mid for mid, direction in rows if direction == "inbound"]
    in_reply_to = inbound[-1] if inbound else (ids[-1] if ids else None)
    references = ids if len(ids) <= 20 else ids[:1] + ids[-19:]
    return in_reply_to, references


def subject_for(conversation: Conversation, subject: Optional[str] = None) -> str:
    """Return an outbound subject: "Re:" the thread's, tagged with the case reference (or our token)."""
    base = _clean_line(subject or conversation.subject or "Your enquiry", 240)
    if subject is None and not re.match(r"^\s*re:", base, re.IGNORECASE):
        base = f"Re: {base}"
    reference = conversation.case.reference if conversation.case else None
    if reference:
        if reference.lower() not in base.lower():
            base = f"{base} [{reference}]"
    elif f"[#{conversation.token}]" not in base:
        base = f"{base} [#{conversation.token}]"
    return base[:300]


def queue_email(conversation: Conversation, *, kind: str, to_address: str, subject: str, body: str,
                author: str = "agent", author_user=None, to_name: Optional[str] = None,
                sent_at: Optional[datetime] = None) -> Message:
    """Store an outbound message in the conversation and queue its sending (after commit)."""
    in_reply_to, references = thread_headers(conversation)
    mid = new_message_id()
    message = append_message(conversation, author, body, direction="outbound", author_user=author_user,
                             email_message_id=mid, delivery_status="queued", sent_at=sent_at)
    send = OutboundEmail(stored_message_id=message.id, conversation_id=conversation.id, kind=kind,
                         to_address=to_address, to_name=_clean_line(to_name or "", 200) or None,
                         subject=subject[:300], message_id_header=mid, in_reply_to=in_reply_to,
                         references=" ".join(references) or None, status="queued", attempts=0)
    stage(send)
    send_after_commit(outbound_email_queued, outbound_id=send.id)
    return message


def acknowledge(conversation, customer, address, parsed, case) -> Optional[Message]:
    """Send the acknowledgement of a new enquiry, rate-limited per sender.

    Called only for a conversation the same message has just opened, so once per thread;
    replies, auto-replies and bounces never get here.
    """
    config = current_app.config
    if not config.get("EMAIL_ACK_ENABLED") or not address:
        return None
    if deliverable_address(customer, address) != address:
        return None
    index = _thread_index.get()  # the batch counted each sender's recent acknowledgements
    recent = index.recent_acks[address]
    if recent >= config["EMAIL_ACK_PER_SENDER_PER_HOUR"]:
        return None
    index.recent_acks[address] = recent + 1
    reference = case.reference if case else None
    lines = [f"Dear {live_customer(customer).name},", "",
             "Thank you for contacting the council. We have received your email"
             + (f" and your reference is {reference}." if reference else "."), "",
             "Please keep the reference in the subject line if you write to us again about this, "
             "so that your messages stay together.", "",
             "This is an automatic acknowledgement; a member of our team will reply.", "",
             config["EMAIL_FROM_NAME"]]
    service_id = case.service_id if case else (conversation.queue.service_id if conversation.queue else None)
    notices = notice_text(service_id, live_customer(customer))
    if notices:
        lines[-2:-2] = [notices, ""]  # a known problem is said before the sign-off
    return queue_email(conversation, kind="ack", to_address=address, to_name=customer.name,
                       subject=subject_for(conversation), body="\n".join(lines), author="system",
                       sent_at=_sent_at(parsed))  # kept next to the enquiry it answers


def send_to_customer(customer: Customer, subject: str, body: str, *, case=None,
                     conversation: Optional[Conversation] = None) -> Optional[Message]:
    """Queue a plain-and-HTML email to the customer's deliverable address; None when there is none.

    The message is kept in `conversation`, else the case's latest email conversation, else a new
    one (marked resolved, so a notification does not sit in an inbox; a reply reopens it).
    Flushes; the caller commits, and the send is queued after the commit.
    """
    customer = live_customer(customer)
    address = deliverable_address(customer)
    if address is None:
        return None
    if conversation is None and case is not None:
        conversation = db.session.scalar(
            select(Conversation).where(Conversation.case_id == case.id, Conversation.channel == CHANNEL,
                                       Conversation.merged_into_id.is_(None))
            .order_by(Conversation.id.desc()).limit(1))
    if conversation is None:
        conversation = new_conversation(customer, subject, case=case, status="resolved",
                                        queue=_email_queue_for(case.service if case else None))
    if case is not None and conversation.case_id is None:
        conversation.case = case
        db.session.flush()
    return queue_email(conversation, kind="notification", to_address=address, to_name=customer.name,
                       subject=subject_for(conversation, subject), body=body, author="system")


def reply_to_conversation(conversation: Conversation, agent, body: str, *, internal: bool = False,
                          attachments: Iterable = ()) -> Message:
    """Store an agent's reply (or internal note) and send it: email over SMTP, chat to the resident.

    `attachments` are (filename, content type, bytes) sent with an email reply.
    """
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("Write a reply first", {"body": ["required"]})
    if len(body) > 20000:
        raise ValidationFailed("The reply is too long", {"body": ["at most 20000 characters"]})
    if internal:
        note = append_message(conversation, "agent", body, direction="outbound", author_user=agent, internal=True)
        send_after_commit(message_stored, message_id=note.id, conversation_id=conversation.id,
                          channel=conversation.channel, author="agent", internal=True, source="api")
        return note
    if conversation.channel != CHANNEL:
        if conversation.status in ("ended", "closed", "resolved"):
            raise Conflict("This chat has ended; the resident is no longer there to read a reply",
                           {"conversation": ["ended"]}, code="ended")
        message = append_message(conversation, "agent", body, direction="outbound", author_user=agent)
        send_after_commit(message_stored, message_id=message.id, conversation_id=conversation.id,
                          channel=conversation.channel, author="agent", internal=False, source="api")
        return message
    customer = live_customer(conversation.customer)
    last_from = db.session.scalar(select(InboundEmail.from_address).where(
        InboundEmail.conversation_id == conversation.id, InboundEmail.from_address.is_not(None))
        .order_by(InboundEmail.id.desc()).limit(1))
    address = deliverable_address(customer, last_from)
    if address is None:
        raise Conflict("The customer has no email address we can deliver to (it bounced or is missing)",
                       {"customer": ["no deliverable email address"]}, code="undeliverable")
    message = queue_email(conversation, kind="reply", to_address=address, to_name=customer.name,
                          subject=subject_for(conversation), body=body, author="agent", author_user=agent)
    for filename, content_type, data in attachments:
        db.session.add(Attachment(message_id=message.id, filename=_clean_line(filename, 200) or "attachment",
                                  content_type=content_type[:100], size=len(data),
                                  sha256=hashlib.sha256(data).hexdigest(), data=data))
    if conversation.assignee_id is None:
        conversation.assignee_id = agent.id
    conversation.status = "waiting_customer"
    case = conversation.case
    if case is not None and case.first_responded_at is None:
        case.first_responded_at = utcnow()
    record_contact(customer, CHANNEL, direction="outbound", summary=f"Email reply: {conversation.subject or ''}"[:300],
                   notes=body[:2000], agent=agent, conversation=conversation, case=case,
                   occurred_at=message.created_at)
    return message


def resolve_conversation(conversation: Conversation, agent, outcome: str) -> None:
    """Mark a conversation resolved; its contacts still pending take the outcome (for FCR reporting)."""
    if outcome not in OUTCOMES or outcome == "pending":
        raise ValidationFailed("Choose an outcome", {"outcome": [f"one of {', '.join(OUTCOMES[:-1])}"]})
    conversation.status = "resolved"
    conversation.closed_at = utcnow()
    if conversation.assignee_id is None:
        conversation.assignee_id = agent.id
    pending = db.session.scalars(select(Contact).where(
        Contact.conversation_id == conversation.id, Contact.outcome == "pending")).all()
    for contact in pending:
        contact.outcome = outcome
        contact.agent_id = contact.agent_id or agent.id
    audit(agent, "conversation.resolve", "conversation", conversation.id, outcome=outcome)


def html_from_text(body: str) -> str:
    """Render a plain-text reply as simple HTML (escaped; paragraphs and line breaks kept)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    inner = "\n".join("<p>" + html_lib.escape(p).replace("\n", "<br>\n") + "</p>" for p in paragraphs)
    return ('<!doctype html><html><body style="font-family: Arial, sans-serif; font-size: 15px; '
            f'line-height: 1.5">\n{inner}\n</body></html>')


def build_mime(send: OutboundEmail) -> EmailMessage:
    """Build the MIME message of an outbound send: threading headers, plain text and HTML."""
    config = current_app.config
    mime = EmailMessage()
    mime["From"] = Address(config["EMAIL_FROM_NAME"], addr_spec=config["CRM_MAIL_FROM"])
    mime["To"] = Address(send.to_name or "", addr_spec=send.to_address)
    mime["Subject"] = send.subject
    mime["Date"] = format_datetime(send.created_at)
    mime["Message-ID"] = f"<{send.message_id_header}>"
    if send.in_reply_to:
        mime["In-Reply-To"] = f"<{send.in_reply_to}>"
    if send.references:
        mime["References"] = " ".join(f"<{r}>" for r in send.references.split())
    address = reply_address(send.conversation)
    if address:
        mime["Reply-To"] = address
    if send.kind != "reply":
        # RFC 3834: mark what we send automatically, and ask other robots not to answer it.
        mime["Auto-Submitted"] = "auto-replied" if send.kind == "ack" else "auto-generated"
        mime["X-Auto-Response-Suppress"] = "All"
    body = send.stored_message.body
    mime.set_content(body)
    mime.add_alternative(html_from_text(body), subtype="html")
    for item in send.stored_message.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        if not (maintype and subtype) or maintype in ("multipart", "message"):
            maintype, subtype = "application", "octet-stream"
        mime.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.filename)
    return mime


def smtp_send(mime: EmailMessage, envelope_from: str, recipients: list) -> None:
    """Hand a message to the configured SMTP relay (STARTTLS and login when configured)."""
    config = current_app.config
    with smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=config.get("SMTP_TIMEOUT", 30)) as smtp:
        smtp.ehlo()
        if config.get("SMTP_STARTTLS"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if config.get("SMTP_USERNAME"):
            smtp.login(config["SMTP_USERNAME"], config.get("SMTP_PASSWORD") or "")
        smtp.send_message(mime, from_addr=envelope_from, to_addrs=recipients)


def _permanent(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600


def deliver(outbound_id: int) -> str:
    """Try to send one queued email; record the outcome on it and its message. Commits; returns the status."""
    # Claim the send in one conditional UPDATE, so two workers (or a duplicate job) never both send it.
    claimed = db.session.execute(
        update(OutboundEmail).where(OutboundEmail.id == outbound_id, OutboundEmail.status.in_(("queued", "retrying")))
        .values(status="sending", claimed_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    send = db.session.get(OutboundEmail, outbound_id)
    if send is None:
        return "missing"
    if not claimed:
        return send.status  # sent already, being sent, or given up on
    message = send.stored_message
    identity = db.session.scalar(select(CustomerIdentity).where(
        CustomerIdentity.kind == "email", CustomerIdentity.value == send.to_address.lower()))
    if (identity is not None and identity.undeliverable) or reserved_mail_domain(send.to_address):
        send.status = message.delivery_status = "suppressed"
        send.last_error = message.delivery_error = "address is marked undeliverable"
        db.session.commit()
        return send.status
    send.attempts += 1
    # Automatic mail goes out with the null sender (RFC 3834), so nothing bounces back into a loop.
    envelope_from = "" if send.kind == "ack" else current_app.config["CRM_MAIL_FROM"]
    try:
        smtp_send(build_mime(send), envelope_from, [send.to_address])
    except (smtplib.SMTPException, OSError) as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:2000]
        final = _permanent(exc) or send.attempts >= current_app.config["EMAIL_SEND_ATTEMPTS"]
        send.status = message.delivery_status = "failed" if final else "retrying"
        send.last_error = message.delivery_error = f"attempt {send.attempts}: {error}"
        db.session.commit()
        log.warning("email %s to %s %s: %s", send.id, send.to_address, send.status, error)
        return send.status
    send.status = message.delivery_status = "sent"
    send.last_error = message.delivery_error = None
    send.sent_at = utcnow()
    db.session.commit()
    return send.status


def retry_send(send: OutboundEmail) -> None:
    """Put a failed send back in the queue (an agent's "try again"); flushes, queued after commit."""
    if send.status not in ("failed", "retrying"):
        raise Conflict(f"This email is {send.status}; only failed sends are retried")
    send.status = send.stored_message.delivery_status = "queued"
    send.attempts = 0
    send_after_commit(outbound_email_queued, outbound_id=send.id)


def requeue_stalled(older_than_minutes: int = 10) -> int:
    """Queue again the sends whose job was lost (queue down at commit, worker killed mid-send). Commits."""
    cutoff = utcnow() - timedelta(minutes=older_than_minutes)
    # Every state is read from the database alone: a queued send whose job never ran, a send whose
    # worker died mid-send, and a send waiting to retry whose delayed job the queue lost (the longest
    # back-off is well under the cut-off).
    stalled = db.session.scalars(select(OutboundEmail).where(
        ((OutboundEmail.status == "queued") & (OutboundEmail.created_at < cutoff))
        | ((OutboundEmail.status.in_(("sending", "retrying"))) & (OutboundEmail.claimed_at < cutoff)))).all()
    for send in stalled:
        send.status = "retrying" if send.status == "sending" else send.status
        send_after_commit(outbound_email_queued, outbound_id=send.id)
    db.session.commit()
    return len(stalled)


@periodic_job(crontab(minute="*/10"))
def requeue_stalled_email() -> int:
    """Periodic job: hand lost sends back to the queue."""
    return requeue_stalled()


@job()
def deliver_email(outbound_id: int) -> str:
    """Background job: send one queued email, retried with back-off until EMAIL_SEND_ATTEMPTS run out."""
    status = deliver(outbound_id)
    if status == "retrying":
        attempts = db.session.get(OutboundEmail, outbound_id).attempts
        raise RetryTask(delay=RETRY_FIRST_DELAY_SECONDS * 2 ** (attempts - 1))
    return status


@outbound_email_queued.connect
def _enqueue_delivery(sender, outbound_id, **payload):
    """Hand a committed outbound email to the job queue."""
    try:
        if huey.immediate:
            # Tests run jobs in-process: give the job its own app context and so its own session,
            # since this runs inside the committing session's after-commit hook.
            with current_app.app_context():
                deliver_email(outbound_id)
        else:
            deliver_email(outbound_id)
    except Exception:  # noqa: BLE001 - the row is committed; requeue_stalled picks it up later
        log.exception("could not queue outbound email %s; it will be queued again", outbound_id)
