"""Where a new email enquiry goes: the service and queue, by the address it was sent to, else by keyword rules."""
from dataclasses import dataclass
from typing import Iterable, Optional

from flask import current_app
from sqlalchemy import func, select

from ...batching import remembered
from ...cases.routing import keywords_match
from ...extensions import db
from ...models import Queue, RoutingRule, Service
from .parse import ParsedEmail


CHANNEL = "email"


@dataclass
class EmailRoute:
    """Where a new email enquiry goes."""

    service: Optional[Service]
    category: Optional[str]
    queue: Optional[Queue]


def email_queue_for(service: Optional[Service]) -> Optional[Queue]:
    """Return the email queue of a service, else the general email queue, else any email queue."""
    service_id = service.id if service is not None else None

    def find() -> Optional[Queue]:
        if service_id is not None:
            queue = db.session.scalar(select(Queue).where(Queue.service_id == service_id, Queue.channel == CHANNEL)
                                      .order_by(Queue.id).limit(1))
            if queue is not None:
                return queue
        return db.session.scalar(select(Queue).where(Queue.channel == CHANNEL)
                                 .order_by(Queue.service_id.is_not(None), Queue.id).limit(1))

    return remembered(("email_queue", service_id), find)


def _category_for(service: Service, text: str) -> Optional[str]:
    rules = remembered(("category_rules", service.id), lambda: db.session.execute(
        select(RoutingRule.keywords, RoutingRule.category_code).where(
            RoutingRule.service_id == service.id, RoutingRule.active.is_(True), RoutingRule.keywords.is_not(None))
        .order_by(RoutingRule.position, RoutingRule.id)).all())
    for rule in rules:
        if rule.keywords.strip() and keywords_match(rule, text):
            return rule.category_code
    categories = remembered(("categories", service.id), lambda: [c.code for c in service.categories if c.active])
    for code in categories:
        if code.startswith("general"):
            return code
    return categories[0] if categories else "general_enquiry"


def route_email(parsed: ParsedEmail, recipients: Iterable[str]) -> EmailRoute:
    """Choose the service and queue of a new enquiry: by the address it was sent to, else by rule."""
    text = f"{parsed.subject}\n{parsed.text[:20000]}"
    recipients = [r.lower() for r in recipients]
    if recipients:
        service = remembered(("service_by_address", tuple(recipients)), lambda: db.session.scalar(
            select(Service).where(func.lower(Service.email_address).in_(recipients), Service.active.is_(True))
            .limit(1)))
        if service is not None:
            return EmailRoute(service, _category_for(service, text), email_queue_for(service))
    rules = remembered(("keyword_rules",), lambda: [
        rule for rule in db.session.scalars(select(RoutingRule).where(
            RoutingRule.active.is_(True), RoutingRule.keywords.is_not(None), RoutingRule.keywords != "")
            .order_by(RoutingRule.position, RoutingRule.id)) if rule.service.active])
    for rule in rules:
        if keywords_match(rule, text):
            return EmailRoute(rule.service, rule.category_code, email_queue_for(rule.service))
    default = current_app.config.get("EMAIL_DEFAULT_SERVICE")
    service = remembered(("default_service", default), lambda: db.session.scalar(
        select(Service).where(Service.code == default, Service.active.is_(True)))) if default else None
    if service is not None:
        return EmailRoute(service, _category_for(service, text), email_queue_for(service))
    return EmailRoute(None, None, email_queue_for(None))
