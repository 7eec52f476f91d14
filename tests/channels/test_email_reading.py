"""A large import reads each batch in a reader process: it reads every message as this process would, and a
reader that fails costs speed, never a message."""
import os
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.channels.email import reading
from crm.channels.email.reading import ReadAhead, ReadSettings, read_message, read_messages
from crm.extensions import db
from crm.models import InboundEmail
from tests.channels.mailbuilder import raw_email
from tests.channels.test_email_cli_smtp import counts_of, write_mbox

CORPUS = Path(__file__).parent / "email_corpus"
SETTINGS = ReadSettings(max_bytes=200_000, max_attachment_bytes=100_000, mail_domain="council.example",
                        our_addresses=("contact@council.example",))


def _corpus():
    return [(path.read_bytes(), None) for path in sorted(CORPUS.glob("*.eml"))] + [(raw_email(), "")]


def test_a_reader_process_reads_every_message_as_this_process_does():
    with_envelopes = _corpus()
    ahead = read_messages(with_envelopes, SETTINGS)
    for (raw, envelope_from), sent in zip(with_envelopes, ahead):
        here = read_message(raw, envelope_from, SETTINGS)
        assert sent.automatic == here.automatic
        assert replace(sent.parsed, mime=None) == replace(here.parsed, mime=None)
        # Only a bounce is read again from its MIME tree; the rest travel without it (it costs more to send).
        assert (sent.parsed.mime is not None) == bool(here.automatic and here.automatic.bounce)


def test_a_message_over_the_size_limit_is_left_for_the_importer_to_quarantine():
    big = raw_email(body="x" * 250_000)
    assert read_messages([(big, None), (raw_email(), None)], SETTINGS)[0] is None


def test_readings_come_back_from_a_real_reader_process():
    from crm.channels.email.ingest import Arrival

    reader = ReadAhead(SETTINGS)
    try:
        arrivals = [Arrival(raw) for raw, _ in _corpus()]
        future = reader.submit(arrivals)
        readings = ReadAhead.readings(future, len(arrivals))
    finally:
        reader.close()
    assert len(readings) == len(arrivals) and all(r is not None for r in readings)
    assert readings[-1].parsed.subject == "Pothole"


def _mailbox(tmp_path, count=12):
    messages = [raw_email(subject="Bins", message_id="reading-1@example.org")]
    messages += [raw_email(subject=f"Re: Bins {n}", in_reply_to="reading-1@example.org") for n in range(count - 3)]
    messages += [raw_email(subject="Away", headers={"Auto-Submitted": "auto-replied"}),
                 (CORPUS / "bounce_postfix.eml").read_bytes()]
    path = tmp_path / "box.mbox"
    write_mbox(path, messages)
    return path


@pytest.mark.parametrize("batch", ["2", "5"])
def test_an_import_read_ahead_ends_as_one_read_here(runner, services, tmp_path, batch):
    path = _mailbox(tmp_path)
    ahead = runner.invoke(args=["crm", "ingest-email", "--batch", batch, str(path)])
    assert counts_of(ahead) == {"ingested": 1, "threaded": 9, "duplicate": 0, "auto_reply": 2, "quarantined": 0}
    again = runner.invoke(args=["crm", "ingest-email", "--batch", "1000", str(path)])  # one batch: read here
    assert counts_of(again)["duplicate"] == 12


def _die(messages, settings):
    os._exit(3)


def test_a_reader_process_that_dies_costs_no_message(runner, services, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(reading, "read_messages", _die)  # the forked reader runs this and dies at once
    path = _mailbox(tmp_path)
    result = runner.invoke(args=["crm", "ingest-email", "--batch", "3", str(path)])
    assert result.exit_code == 0, result.output
    assert "terminated abruptly" in caplog.text  # it really died; the importer read the messages itself
    assert counts_of(result) == {"ingested": 1, "threaded": 9, "duplicate": 0, "auto_reply": 2, "quarantined": 0}
    assert db.session.scalar(select(func.count()).select_from(InboundEmail).where(
        InboundEmail.status == "received")) == 0
