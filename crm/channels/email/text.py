"""Bodies as we show them: HTML read as plain text, HTML made safe to display, and a reply without the
message it quotes.

Split from parse.py so reading the MIME tree and judging its text stay apart; nothing here touches the database.
"""
import re
from html.parser import HTMLParser
from typing import Iterable, Optional

import nh3

SAFE_HTML_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "div", "em", "font", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "small", "span", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
SAFE_HTML_ATTRIBUTES = {
    "a": {"href", "title"}, "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}, "ol": {"start"},
}


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
