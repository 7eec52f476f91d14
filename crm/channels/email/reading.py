"""Reading a raw message (parse, then recognise automatic mail), in this process or a reader process ahead of it.

A large import parses each batch in a second process while this one stores the batch before it
(`ReadAhead`): parsing is about a sixth of the import's CPU and needs nothing but the bytes, so on a
machine with two cores it costs the import no time at all (bench/README.md). What comes back is
exactly what `read_message` gives here, minus the MIME tree (only a bounce needs it later), which
costs more to send between processes than to parse again.
"""
import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Optional

from .automatic import AutoSignal, detect_automatic
from .parse import ParsedEmail, parse_email

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadSettings:
    """The app settings reading needs, so that a reader process needs no app."""

    max_bytes: int
    max_attachment_bytes: int
    mail_domain: str
    our_addresses: tuple

    @classmethod
    def of(cls, config) -> "ReadSettings":
        return cls(config["EMAIL_MAX_BYTES"], config["EMAIL_MAX_ATTACHMENT_BYTES"], config["CRM_MAIL_DOMAIN"],
                   (config["CRM_MAIL_FROM"],))


@dataclass
class Reading:
    """A parsed message and, when no person wrote it, why."""

    parsed: ParsedEmail
    automatic: Optional[AutoSignal]


def read_message(raw: bytes, envelope_from: Optional[str], settings: ReadSettings) -> Reading:
    """Parse a message within the size limit and recognise automatic mail."""
    parsed = parse_email(raw, max_attachment_bytes=settings.max_attachment_bytes)
    return Reading(parsed, detect_automatic(parsed, envelope_from, settings.mail_domain, settings.our_addresses))


def read_messages(messages: list, settings: ReadSettings) -> list:
    """Read (raw, envelope_from) pairs in a reader process: a Reading each, None for one over the size limit."""
    readings = []
    for raw, envelope_from in messages:
        if len(raw) > settings.max_bytes:
            readings.append(None)  # the importer quarantines it, reading its headers alone
            continue
        reading = read_message(raw, envelope_from, settings)
        if reading.automatic is None or not reading.automatic.bounce:
            reading.parsed.mime = None
        readings.append(reading)
    return readings


class ReadAhead:
    """One reader process that parses the next batch while the importer stores the one before it.

    `submit(arrivals)` hands a batch over and returns a Future of its readings (one per arrival,
    None where the importer must read the message itself). If the reader process fails, the
    importer reads every message itself: nothing is lost, only the head start.
    """

    def __init__(self, settings: ReadSettings):
        self.settings = settings
        self._pool: Optional[ProcessPoolExecutor] = None

    def submit(self, arrivals: list) -> Optional[Future]:
        try:
            if self._pool is None:
                # fork: the reader starts with every module already imported, and never touches the database.
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
            return self._pool.submit(read_messages, [(a.raw, a.envelope_from) for a in arrivals], self.settings)
        except Exception as error:  # noqa: BLE001 - a broken or unstartable reader: read here instead
            log.warning("no reader process (%s); messages are read in this process", error)
            return None

    @staticmethod
    def readings(future: Optional[Future], count: int) -> list:
        """Return a batch's readings, or Nones (read in this process) if the reader failed."""
        if future is not None:
            try:
                return future.result()
            except Exception as error:  # noqa: BLE001 - a dead reader costs speed, never a message
                log.warning("the reader process failed (%s); messages are read in this process", error)
        return [None] * count

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
