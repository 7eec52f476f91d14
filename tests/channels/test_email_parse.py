"""Reading a message with raw header values (compat32) gives exactly what the modern email policy gives."""
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from crm.channels.email import parse
from crm.channels.email.automatic import detect_automatic, read_bounce
from tests.channels.test_email_properties import as_message, header_block, bodies

CORPUS = Path(__file__).parent / "email_corpus"
FIELDS = ("message_id", "in_reply_to", "references", "from_name", "from_address", "from_raw", "recipients",
          "subject", "date", "text", "html", "withheld", "defects")
HEADERS = ("Subject", "From", "To", "Auto-Submitted", "Precedence", "List-Id", "Return-Path", "X-Failed-Recipients")


def reading(raw: bytes) -> dict:
    """Everything the pipeline takes from a parsed message."""
    parsed = parse.parse_email(raw)
    seen = {name: getattr(parsed, name) for name in FIELDS}
    seen["attachments"] = [(a.filename, a.content_type, a.data, a.inline, a.content_id) for a in parsed.attachments]
    seen["headers"] = [parsed.header(name) for name in HEADERS]
    signal = detect_automatic(parsed, None, "council.example", ["contact@council.example"])
    seen["automatic"] = signal and (signal.reasons, signal.bounce)
    if signal is not None and signal.bounce:
        seen["bounce"] = read_bounce(raw, parsed, "council.example")
    return seen


def modern_reading(raw: bytes, monkeypatch) -> dict:
    """The same, every message read with the modern policy (as before raw values were kept)."""
    with monkeypatch.context() as patch:
        patch.setattr(parse, "_plain_mime", lambda mime: False)
        return reading(raw)


def test_plain_messages_are_read_with_raw_header_values_unfolded_as_the_modern_policy_does():
    raw = (b"From: Jane <jane@example.org>\nSubject: Bins\nContent-Type: multipart/mixed;\n boundary=\"b\"\n\n"
           b"--b\nContent-Type: text/plain; charset=utf-8\n\nhello\n--b--\n")
    parsed = parse.parse_email(raw)
    assert parsed.mime.get("Content-Type") == 'multipart/mixed; boundary="b"'
    assert type(parsed.mime.get("Content-Type")) is str
    assert parsed.text == "hello"


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.eml")))
def test_every_corpus_message_reads_as_with_the_modern_policy(name, monkeypatch):
    raw = (CORPUS / name).read_bytes()
    assert reading(raw) == modern_reading(raw, monkeypatch)


# Header values built from the pieces that trip parsers: quotes, escapes, comments, folding, encoded words.
PIECES = st.sampled_from([*" \t;=\"'/\\()<>@,.:aXz09-_*%\r\n?", "=?utf-8?q?caf=C3=A9?=", "multipart/mixed",
                          "text/plain", "text/html", "attachment", "inline", 'boundary="b"', 'filename="a b.pdf"',
                          "filename*=utf-8''caf%C3%A9.txt", "charset=utf-8", "\r\n ", "\n\t", "\u00e9", "related",
                          "alternative", 'start="<x@y>"', "base64", "quoted-printable"])
VALUES = st.lists(PIECES, max_size=14).map("".join)
MIME_NAMES = st.sampled_from(["Content-Type", "Content-Disposition", "Content-Transfer-Encoding", "Content-ID"])


def entity(headers, body: str) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n" + body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["Subject", "From", "To", "Auto-Submitted", "List-Id"]) | MIME_NAMES,
                          VALUES), max_size=8),
       st.lists(st.tuples(st.lists(st.tuples(MIME_NAMES, VALUES), max_size=4), st.text(max_size=60)), max_size=4),
       st.sampled_from(["mixed", "alternative", "related", "report", None]))
def test_any_mime_tree_reads_as_with_the_modern_policy(monkeypatch, headers, parts, kind):
    if kind is None:
        body = "".join(text for _, text in parts)
    else:
        body = "".join(f"--b\r\n{entity(h, text)}\r\n" for h, text in parts) + "--b--\r\n"
        headers = [*headers, ("Content-Type", f'multipart/{kind}; boundary="b"')]
    raw = entity(headers, body).encode("utf-8", "surrogatepass")
    assert reading(raw) == modern_reading(raw, monkeypatch)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=1500), st.builds(as_message, header_block, bodies)))
def test_any_bytes_read_as_with_the_modern_policy(monkeypatch, raw):
    assert reading(raw) == modern_reading(raw, monkeypatch)
