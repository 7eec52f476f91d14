"""API: record a contact (a logged call and the like), optionally raising a case."""
from flask_login import current_user

from ..auth.access import roles_required
from ..channels.phone import CaseRequest, log_call
from ..extensions import db
from ..knowledge.articles import record_use as record_article_use
from . import api_blueprint
from .schemas import ContactIn, ContactOut

blp = api_blueprint("contacts", __name__, "Contacts on any channel", "/contacts")


@blp.post("")
@roles_required()
@blp.arguments(ContactIn)
@blp.response(201, ContactOut)
def create(data):
    """Log a contact for a known customer or a caller (resolved by email/phone)."""
    case = CaseRequest(**data["case"]) if data.get("case") else None
    contact, _ = log_call(
        current_user,
        customer_id=data.get("customer_id"),
        caller=data.get("caller"),
        channel=data["channel"],
        direction=data["direction"],
        category=data.get("category"),
        notes=data.get("notes") or "",
        outcome=data["outcome"],
        started_at=data.get("started_at"),
        ended_at=data.get("ended_at"),
        case=case,
    )
    record_article_use(current_user, data["articles"], contact.channel, contact_id=contact.id)
    db.session.commit()
    return contact
