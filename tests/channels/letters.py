"""A letter channel as a new channel would be written: one module, one adapter, registered by a test app.

A letter "goes" as an outbound contact on the resident's timeline (the print room posts it); its page
lists the letters waiting to be printed.
"""
from typing import Optional

from flask import Blueprint, jsonify
from sqlalchemy import select

from crm.channels.registry import Channel
from crm.customers.identity import live_customer
from crm.customers.timeline import record_contact
from crm.extensions import db
from crm.models import Contact

bp = Blueprint("letters", __name__, url_prefix="/letters")


@bp.get("/to-print")
def to_print():
    """List the letters waiting for the print room."""
    rows = db.session.scalars(select(Contact).where(Contact.channel == "letter", Contact.direction == "outbound")
                              .order_by(Contact.id)).all()
    return jsonify([{"customer_id": row.customer_id, "summary": row.summary} for row in rows])


class LetterChannel(Channel):
    """Letters: the council can always write to a resident whose postal address it holds."""

    name = "letter"

    def address(self, customer, case=None) -> Optional[str]:
        place = live_customer(customer).primary_address
        return f"{place.line1}, {place.postcode}" if place is not None and place.postcode else None

    def deliver(self, customer, subject: str, body: str, case=None):
        if not self.reaches(customer, case):
            return None
        return record_contact(live_customer(customer), "letter", direction="outbound", summary=f"Letter: {subject}",
                              notes=body, case=case)

    def register(self, app, api) -> None:
        app.register_blueprint(bp)


channel = LetterChannel()
