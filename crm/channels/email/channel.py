"""The email channel's adapter in the channel registry: it reaches a resident at an address that has not bounced."""
from typing import Iterable, Optional

from sqlalchemy import select

from ...auth.roles import ADMINS, FRONT_LINE
from ...customers.identity import live_customer
from ...extensions import db
from ...models import Conversation, CustomerIdentity, Message
from ..registry import Channel
from .outbound import deliverable_address, queue_email, send_reply, send_to_customer, subject_for
from .routing import CHANNEL, email_queue_for
from .threads import new_conversation


class EmailChannel(Channel):
    """Email: sends mail to the resident, kept in the case's email conversation and queued after commit."""

    name = CHANNEL

    def address(self, customer, case=None) -> Optional[str]:
        """Return where a resident's email goes: the address given for the case, else the record's (None: nowhere).

        A case reported with only a phone number is not emailed to the record's address: the record may
        be another person's who shares that phone.
        """
        if case is not None and case.contact_email:
            bounced = db.session.scalar(select(CustomerIdentity.undeliverable).where(
                CustomerIdentity.kind == "email", CustomerIdentity.value == case.contact_email))
            return None if bounced else case.contact_email
        if case is not None and case.contact_phone:
            return None
        customer = live_customer(customer)
        return deliverable_address(customer) if customer is not None else None

    def deliver(self, customer, subject: str, body: str, case=None) -> Optional[Message]:
        """Queue an email to the resident (see address), kept in the case's latest email conversation."""
        if case is None or not (case.contact_email or case.contact_phone):
            return send_to_customer(customer, subject, body, case=case)
        address = self.address(customer, case)
        if address is None:
            return None
        customer = live_customer(customer)
        # Like send_to_customer, but to the case's own address (that one picks the record's).
        conversation = db.session.scalar(
            select(Conversation).where(Conversation.case_id == case.id, Conversation.channel == CHANNEL)
            .order_by(Conversation.id.desc()).limit(1))
        if conversation is None:
            conversation = new_conversation(customer, subject, case=case, status="resolved",
                                            queue=email_queue_for(case.service))
        return queue_email(conversation, kind="notification", to_address=address, to_name=customer.name,
                           subject=subject_for(conversation, subject), body=body, author="system")

    def reply(self, conversation, agent, body: str, attachments: Iterable = ()) -> Message:
        """Queue the reply by email, threaded, with its files; the conversation then waits on the resident."""
        return send_reply(conversation, agent, body, attachments)

    def register(self, app, api) -> None:
        """Register the email console pages, the inbound API and the mail commands."""
        from ...navigation import add_nav_item  # noqa: PLC0415
        from . import cli, web  # noqa: F401, PLC0415  (its views build on the whole app; commands attach on import)
        from .api import inbound_blp  # noqa: PLC0415

        app.register_blueprint(web.bp)
        add_nav_item("Email", "email.inbox", *FRONT_LINE)
        add_nav_item("Quarantine", "email.quarantine", *ADMINS)
        api.register_blueprint(inbound_blp)


channel = EmailChannel()
