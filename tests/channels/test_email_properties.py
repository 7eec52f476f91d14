"""Property: no bytes whatsoever crash the parser or the inbound pipeline."""
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from crm.channels.email import parse_email, receive, trim_reply
from crm.extensions import db
from crm.models import InboundEmail

HEADER_NAMES = ["From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "Content-Type",
                "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted", "Return-Path", "Date"]
VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(['multipart/mixed; boundary="b"', "multipart/report; report-type=delivery-status",
                     "text/html; charset=x-nonsense", "base64", "quoted-printable", "<>", "=?utf-8?B?////?=",
                     "=?bogus?Q?=ZZ?=", '"" <@>', "attachment; filename*=utf-8''%FF%FE", "<a@b> <c@d>"]),
)
header_block = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), VALUES), max_size=12)
bodies = st.one_of(st.binary(max_size=2000), st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")))


def as_message(headers, body: bytes) -> bytes:
    lines = [f"{name}: {value}".encode("utf-8", "surrogatepass") for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_parse_email_never_raises_on_arbitrary_bytes(raw):
    parsed = parse_email(raw)
    assert isinstance(parsed.text, str)
    trim_reply(parsed.text, parsed.subject)


@settings(max_examples=300, deadline=None)
@given(header_block, bodies)
def test_parse_email_never_raises_on_mangled_mime(headers, body):
    parse_email(as_message(headers, body))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(min_size=1, max_size=1500), st.builds(as_message, header_block, bodies)))
def test_the_pipeline_answers_every_message_and_keeps_it(app, raw):
    if not raw:
        return
    before = db.session.scalar(select(func.count(InboundEmail.id)))
    result = receive(raw, source="http")
    assert result.status in ("ingested", "threaded", "duplicate", "auto_reply", "quarantined")
    after = db.session.scalar(select(func.count(InboundEmail.id)))
    assert after == before + (0 if result.status == "duplicate" else 1)
