"""The ways in from outside the web app: `crm ingest-email` (file, mbox, Maildir) and the SMTP listener."""
import json
import smtplib

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.channels.email.smtp import make_controller
from crm.channels.email.sources import iter_mbox
from crm.models import Conversation, InboundEmail
from tests.support import free_port
from tests.channels.mailbuilder import raw_email


def counts_of(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def write_mbox(path, messages):
    with open(path, "wb") as handle:
        for raw in messages:
            body = raw.replace(b"\r\n", b"\n")
            # mboxrd: body lines starting "From " are escaped with ">".
            body = b"\n".join(b">" + line if line.startswith((b"From ", b">From ")) else line
                              for line in body.split(b"\n"))
            handle.write(b"From sender@example.org Tue Nov 24 10:00:00 2026\n" + body.rstrip(b"\n") + b"\n\n")


def test_ingest_a_single_message_file(runner, services, tmp_path):
    path = tmp_path / "one.eml"
    path.write_bytes(raw_email(subject="Pothole"))
    assert counts_of(runner.invoke(args=["crm", "ingest-email", str(path)])) == {
        "ingested": 1, "threaded": 0, "duplicate": 0, "auto_reply": 0, "quarantined": 0}


def test_ingest_an_mbox_with_new_threaded_auto_duplicate_and_broken_messages(runner, services, tmp_path):
    first = raw_email(subject="Bins", message_id="mbox-1@example.org",
                      body="Missed again.\nFrom the look of it nobody came.")
    messages = [
        first,
        raw_email(subject="Re: Bins", in_reply_to="mbox-1@example.org", body="Still missed"),
        raw_email(subject="Away", headers={"Auto-Submitted": "auto-replied"}),
        first,
        b"Subject: nobody sent this\n\njust text\n",
    ]
    path = tmp_path / "box.mbox"
    write_mbox(path, messages)
    result = runner.invoke(args=["crm", "ingest-email", str(path)])
    assert counts_of(result) == {"ingested": 1, "threaded": 1, "duplicate": 1, "auto_reply": 1, "quarantined": 1}
    # The escaped "From " line in the body came back unescaped.
    stored = db.session.scalar(select(InboundEmail).where(InboundEmail.message_id_header == "mbox-1@example.org"))
    assert b"\nFrom the look of it" in stored.raw and b">From" not in stored.raw


def test_ingest_a_maildir_and_several_paths_at_once(runner, services, tmp_path):
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.host").write_bytes(raw_email(subject="One"))
    (maildir / "cur" / "2.host:2,S").write_bytes(raw_email(subject="Two"))
    single = tmp_path / "three.eml"
    single.write_bytes(raw_email(subject="Three"))
    counts = counts_of(runner.invoke(args=["crm", "ingest-email", str(maildir), str(single)]))
    assert counts["ingested"] == 3
    assert db.session.scalar(select(func.count(Conversation.id))) == 3


def test_ingest_refuses_a_directory_that_is_not_a_maildir_and_a_missing_path(runner, services, tmp_path):
    result = runner.invoke(args=["crm", "ingest-email", str(tmp_path)])
    assert result.exit_code == 1 and "not a Maildir" in result.output and "Traceback" not in result.output
    missing = runner.invoke(args=["crm", "ingest-email", str(tmp_path / "nope.mbox")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_mbox_reading_streams_and_keeps_message_boundaries(tmp_path):
    path = tmp_path / "x.mbox"
    write_mbox(path, [raw_email(subject=f"n{n}") for n in range(50)])
    messages = list(iter_mbox(str(path)))
    assert len(messages) == 50 and all(m.startswith(b"From: ") for m in messages)
    assert all(not m.endswith(b"\n\n") for m in messages)


@pytest.fixture
def listener(app, services):
    port = free_port()
    controller = make_controller(app, "127.0.0.1", port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_the_smtp_listener_takes_mail_for_our_domain_and_services(listener, smtp_sink):
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as smtp:
        smtp.sendmail("jane@example.org", ["contact@council.example"],
                      raw_email(subject="By SMTP", message_id="smtp-1@example.org"))
        code, reply = smtp.docmd("NOOP")
        assert code == 250
    row = db.session.scalar(select(InboundEmail).where(InboundEmail.message_id_header == "smtp-1@example.org"))
    assert row.source == "smtp" and row.status == "ingested"
    assert row.envelope_from == "jane@example.org" and row.envelope_to == "contact@council.example"
    assert len(smtp_sink.messages) == 1  # the acknowledgement went out through the relay


def test_the_smtp_listener_refuses_other_recipients(listener):
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("jane@example.org")
        code, _ = smtp.rcpt("someone@elsewhere.example")
        assert code == 550
        code, _ = smtp.rcpt("highways@council.example")
        assert code == 250
    assert db.session.scalar(select(func.count(InboundEmail.id))) == 0


def test_the_smtp_listener_enforces_its_size_limit(app, services):
    app.config["EMAIL_MAX_BYTES"] = 2000
    port = free_port()
    controller = make_controller(app, "127.0.0.1", port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            with pytest.raises(smtplib.SMTPException) as refused:
                smtp.sendmail("jane@example.org", ["contact@council.example"], raw_email(body="x" * 10000))
            assert "552" in str(refused.value) or "size" in str(refused.value).lower()
    finally:
        controller.stop()


def test_the_smtp_listener_treats_the_null_sender_as_automatic(listener, smtp_sink):
    with smtplib.SMTP("127.0.0.1", listener, timeout=10) as smtp:
        smtp.sendmail("<>", ["contact@council.example"], raw_email(subject="Delivery report"))
    row = db.session.scalar(select(InboundEmail))
    assert row.status == "auto_reply" and row.envelope_from == ""
    assert smtp_sink.messages == []
