"""The built-in SMTP listener: accepts mail for the council's addresses and feeds the pipeline.

A message is answered 250 only once its raw bytes are committed; when the database cannot take
it the answer is 451, so the sending server keeps it and tries again: nothing is lost.
"""
import asyncio
import logging

from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from .ingest import receive
from ...extensions import db
from ...models import Service

log = logging.getLogger(__name__)


class InboundHandler:
    """aiosmtpd handler: recipient checks, then the email pipeline (run off the event loop)."""

    def __init__(self, app):
        self.app = app

    def accepts(self, address: str) -> bool:
        """Say whether mail to this address is ours to take."""
        address = (address or "").strip().lower()
        if "@" not in address:
            return False
        config = self.app.config
        domain = address.rsplit("@", 1)[1]
        if domain in config["EMAIL_ACCEPTED_DOMAINS"] or address in config["EMAIL_ACCEPTED_ADDRESSES"]:
            return True
        with self.app.app_context():
            found = db.session.scalar(select(func.count(Service.id)).where(
                func.lower(Service.email_address) == address))
            db.session.remove()
        return bool(found)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        accepted = await asyncio.get_running_loop().run_in_executor(None, self.accepts, address)
        if not accepted:
            return f"550 5.1.1 <{address}>: recipient not accepted here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                None, self.deliver, raw, envelope.mail_from, list(envelope.rcpt_tos))
        except Exception:  # noqa: BLE001 - the sender keeps the message and retries
            log.exception("could not store an inbound message; answered 451")
            return "451 4.3.0 Temporary failure storing the message; please try again later"
        return f"250 2.0.0 Message {result.status}"

    def deliver(self, raw: bytes, mail_from: str, rcpt_tos: list):
        """Run the pipeline for one message in its own app context (and so its own session)."""
        with self.app.app_context():
            try:
                null_sender = mail_from in (None, "", "<>")
                return receive(raw, source="smtp", envelope_from="" if null_sender else mail_from,
                               envelope_to=rcpt_tos)
            finally:
                db.session.remove()


def make_controller(app, host: str, port: int) -> Controller:
    """Build (not start) an SMTP listener for the app with its size limit."""
    return Controller(InboundHandler(app), hostname=host, port=port,
                      data_size_limit=app.config["EMAIL_MAX_BYTES"], ident="Council CRM")
