"""Read a raw message: headers, addresses, text and HTML bodies, attachments, and the quoted part of a reply.

Nothing here touches the database: the ingest pipeline calls `parse_email` and works on what it returns.
"""
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message as MimeMessage
from email.parser import BytesParser
from email.policy import EmailPolicy, compat32
from email.utils import getaddresses, parsedate_to_datetime
from functools import lru_cache
from typing import Optional


from ...customers.identity import normalise_email
from ...errors import DomainError
from ...models import utcnow
from .text import html_to_text


MSGID_RE = re.compile(r"<([^<>\s]{1,998})>")
MAX_BODY_CHARS = 200_000
OUR_ID_PREFIX = "crm."
BLOCKED_EXTENSIONS = frozenset(
    "ade adp app bat chm cmd com cpl dll exe hta inf ins isp jar js jse lib lnk mde msc msi msp "
    "mst pif ps1 reg scr sct shb shs sys vb vbe vbs vxd wsc wsf wsh".split())
BLOCKED_TYPES = frozenset({"application/x-msdownload", "application/x-msdos-program",
                           "application/x-dosexec", "application/x-sh", "application/javascript"})
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


# The headers the modern policy reads as structured values (addresses, dates, MIME fields); any
# other header is unstructured text, which it only unfolds and decodes.
_STRUCTURED = frozenset(READ_POLICY.header_factory.registry) - {"subject"}


def _modern(name: str, raw: str):
    """Return a raw header value read by the modern policy, as `mime.get(name)` would (parsed once per value)."""
    return READ_POLICY.header_fetch_parse(name, raw)


def header_text(mime: MimeMessage, name: str) -> str:
    """Return a header decoded to text; fall back to the raw value when the modern parser gives up."""
    raw_values = _raw_headers(mime, name)
    if not raw_values:
        return ""
    for raw in raw_values:
        if re.search("[\udc80-\udcff]", raw):
            # Raw 8-bit bytes in a header (against the RFC, but common): UTF-8, else Windows-1252.
            return _decode_words(_decode_bytes(raw.encode("ascii", "surrogateescape"), None))
    raw = raw_values[0]
    if "=?" not in raw and raw.isascii() and name.lower() not in _STRUCTURED:
        # Plain unstructured text: the modern policy would only unfold it (tests/channels/test_email_parse.py).
        return "".join(_LINESEPS.split(raw))
    try:
        return without_surrogates(str(_modern(name, raw)))
    except Exception:  # noqa: BLE001 - a malformed header must not stop the message
        return _decode_words(raw)


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


def clean_line(text: str, limit: int) -> str:
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


def header_addresses(mime: MimeMessage, name: str) -> list:
    """Return (display name, address) pairs of an address header, read leniently."""
    raw_values = _raw_headers(mime, name)
    if not raw_values:
        return []
    plain = _plain_mailbox(raw_values[0]) if len(raw_values) == 1 else None
    pairs = [plain] if plain is not None else []
    try:
        value = _modern(name, raw_values[0]) if plain is None else None
        if value is not None and getattr(value, "addresses", None) is not None:
            pairs = [(a.display_name, a.addr_spec) for a in value.addresses]
    except Exception:  # noqa: BLE001
        pairs = []
    if not pairs:
        # Addresses are read from the raw value and only then are display names decoded: an encoded
        # name can hold anything, "<someone@else>" and line breaks included, and must never become the address.
        pairs = [(_decode_words(n), a) for n, a in getaddresses(raw_values)]
    return [(clean_line(n, 200), without_surrogates((a or "").strip())) for n, a in pairs
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


def leaf_parts(part: MimeMessage, depth: int = 0):
    """Yield the leaf parts of a message, not descending into attached messages (max depth 20)."""
    if depth > 20:
        return
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            for child in payload:
                if isinstance(child, MimeMessage):
                    yield from leaf_parts(child, depth + 1)
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


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAMS = rf'(?:[ \t]*;[ \t]*{_TOKEN}[ \t]*=[ \t]*(?:{_TOKEN}|"[^"\\\\]*"))*[ \t]*;?[ \t]*'
# MIME header values written as the RFC says, which the modern policy reads back as the same text.
_WELL_FORMED = {
    "content-type": re.compile(rf"[ \t]*{_TOKEN}/{_TOKEN}{_PARAMS}"),
    "content-disposition": re.compile(rf"[ \t]*{_TOKEN}{_PARAMS}"),
    "content-transfer-encoding": re.compile(rf"[ \t]*{_TOKEN}[ \t]*"),
    "content-id": re.compile(r"[ \t]*<[^<>\s\"()\\=]*>[ \t]*"),
}


def _read_mime(raw: bytes) -> MimeMessage:
    """Parse the MIME tree, keeping header values as the raw strings they are.

    The modern policy parses every header it touches (the parser alone reads Content-Type several
    times per part), which was most of the cost of a message. compat32 keeps the raw values, and
    `header_text`/`header_addresses` read the few we need as the modern policy would. The body and
    attachment logic reads MIME headers through `Message` methods that treat a raw value and the
    modern parse of it alike when the value is plain ASCII; a message with any other MIME header
    (encoded words, comments, escapes, raw 8-bit bytes) or a message inside it is read with the
    modern policy, as before (tests/channels/test_email_parse.py compares the two).
    """
    try:
        mime = BytesParser(policy=compat32).parsebytes(raw)
        if _plain_mime(mime):
            return mime
    except Exception:  # noqa: BLE001 - whatever compat32 cannot read, the modern policy reads as before
        pass
    return BytesParser(policy=READ_POLICY).parsebytes(raw)


def _plain_mime(mime: MimeMessage) -> bool:
    """Say whether every MIME header of every part is well formed; unfold the folded ones as the modern policy does."""
    for part in mime.walk():
        for name, value in part.raw_items():
            grammar = _WELL_FORMED.get(name.lower())
            if grammar is None:
                continue
            if "\r" in value or "\n" in value:
                if len(part.get_all(name, ())) > 1:
                    return False  # replace_header would unfold only the first
                value = "".join(_LINESEPS.split(value))
                part.replace_header(name, value)
            if not value.isascii() or "=?" in value or not grammar.fullmatch(value):
                return False
        if part.get_content_maintype() == "message":
            return False
    return True


def _body_part(mime: MimeMessage, preferencelist: tuple):
    """Return the part `EmailMessage.get_body(preferencelist)` would, for a message of either policy."""
    if isinstance(mime, EmailMessage):
        return mime.get_body(preferencelist=preferencelist)
    best, body = len(preferencelist), None
    for priority, part in _find_body(mime, mime, preferencelist):
        if priority < best:
            best, body = priority, part
            if priority == 0:
                break
    return body


def _find_body(top: MimeMessage, part: MimeMessage, preferencelist: tuple):
    """The standard library's EmailMessage._find_body, reading raw header values (quirks kept)."""
    if (part.get_content_disposition() or "") == "attachment":
        return
    maintype, subtype = part.get_content_type().split("/")
    if maintype == "text":
        if subtype in preferencelist:
            yield (preferencelist.index(subtype), part)
        return
    if maintype != "multipart" or not top.is_multipart():  # sic: the top message, as the standard library
        return
    if subtype != "related":
        if part.is_multipart():
            for subpart in part.get_payload():
                yield from _find_body(top, subpart, preferencelist)
        return
    if "related" in preferencelist:
        yield (preferencelist.index("related"), part)
    candidate = None
    start = part.get_param("start")
    if start:
        for subpart in (part.get_payload() if part.is_multipart() else []):
            if subpart["content-id"] == start:
                candidate = subpart
                break
    if candidate is None:
        subparts = part.get_payload()
        candidate = subparts[0] if subparts else None
    if candidate is not None:
        yield from _find_body(top, candidate, preferencelist)


def parse_email(raw: bytes, *, max_attachment_bytes: int = 10 * 1024 * 1024) -> ParsedEmail:
    """Parse raw RFC 5322 bytes, tolerating every malformation we can; headers are read as the modern email API reads them."""
    mime = _read_mime(raw)
    parsed = ParsedEmail(mime=mime)
    parsed.defects = [type(d).__name__ for d in getattr(mime, "defects", [])][:20]
    # Message-IDs and the date are read from the raw values: the modern parser's header objects
    # would only be turned back into the same text (and parsing them is most of the parse).
    parsed.message_id = normalise_message_id(_unfolded(mime, "Message-ID"))
    parsed.in_reply_to = message_ids_in(_unfolded(mime, "In-Reply-To"))
    parsed.references = message_ids_in(_unfolded(mime, "References"))
    parsed.subject = clean_line(header_text(mime, "Subject"), 300)
    senders = header_addresses(mime, "From") or header_addresses(mime, "Sender")
    from_raw = _unfolded(mime, "From")
    parsed.from_raw = clean_line(from_raw if _plain_mailbox(from_raw) else header_text(mime, "From"), 500)
    if senders:
        name, address = senders[0]
        parsed.from_name = name
        try:
            parsed.from_address = normalise_email(address)
        except DomainError:
            parsed.from_address = None
    for name in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
        parsed.recipients.extend(a.lower() for _, a in header_addresses(mime, name))
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
        text_part = _body_part(mime, ("plain",))
        html_part = _body_part(mime, ("html",))
    except Exception:  # noqa: BLE001 - broken trees: fall back to walking the leaves below
        pass
    leaves = list(leaf_parts(mime))
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


def date_written(parsed: ParsedEmail) -> Optional[datetime]:
    """Return the Date of a message in UTC, unless it claims to be from the future."""
    if parsed.date is None:
        return None
    try:
        date = parsed.date.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        return None
    return date if date <= utcnow() + timedelta(days=1) else None
