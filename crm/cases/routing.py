"""Routing rules: which service, queue, priority and SLA a case of a category goes to.

Rules are tried in position order (lowest first); a rule with keywords applies only when one
of them appears in the case's title or description, so "pothole" + "school" can go faster than
any other pothole. With no matching rule the category's own service takes the case.
"""
import re
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select

from ..audit import audit
from ..batching import remembered
from ..errors import ValidationFailed
from ..extensions import db
from ..models import PRIORITIES, Category, Queue, RoutingRule, Service


@dataclass(frozen=True)
class Route:
    """Where a case goes and on what terms."""

    service: Service
    queue: Optional[Queue]
    priority: str
    sla_hours: int
    rule: Optional[RoutingRule]


def keyword_list(raw: Optional[str]) -> list[str]:
    """Split a rule's keywords (comma separated) into lower-case terms."""
    return [k.strip().lower() for k in (raw or "").split(",") if k.strip()]


def keywords_match(rule: RoutingRule, text: str) -> bool:
    """Say whether a rule applies to this text: no keywords, or one of them as a whole word."""
    words = keyword_list(rule.keywords)
    if not words:
        return True
    lowered = text.lower()
    return any(re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", lowered) for word in words)


def find_category(code: str) -> Optional[Category]:
    """Return the active category with this code, if any."""
    return remembered(("category", code), lambda: db.session.scalar(
        select(Category).where(Category.code == code, Category.active.is_(True))))


def higher_priority(a: str, b: str) -> str:
    """Return the more urgent of two priorities."""
    return max(a, b, key=PRIORITIES.index)


def default_queue(service: Service) -> Optional[Queue]:
    """Return the service's case queue, if it has one."""
    return remembered(("case_queue", service.id), lambda: db.session.scalar(
        select(Queue).where(Queue.service_id == service.id, Queue.channel == "cases").order_by(Queue.id)))


def route(category: str, text: str = "", service: Optional[Service] = None) -> Route:
    """Decide where a case of `category` goes; `service` is the caller's choice when no rule says otherwise."""
    rules = remembered(("routing_rules", category), lambda: db.session.scalars(
        select(RoutingRule).where(RoutingRule.category_code == category, RoutingRule.active.is_(True))
        .order_by(RoutingRule.position, RoutingRule.id)).all())
    for rule in rules:
        if rule.service.active and keywords_match(rule, text):
            return Route(rule.service, rule.queue or default_queue(rule.service), rule.priority,
                         rule.sla_hours or rule.service.sla_hours, rule)
    if service is None:
        found = find_category(category)
        if found is None or not found.service.active:
            raise ValidationFailed("Unknown category", {"category": [f"no category {category!r}"]})
        service = found.service
    return Route(service, default_queue(service), "normal", service.sla_hours, None)


def save_rule(rule: Optional[RoutingRule], actor, *, position: int, category_code: str, keywords: Optional[str],
              service_id: int, queue_id: Optional[int], priority: str, sla_hours: Optional[int],
              active: bool) -> RoutingRule:
    """Add a routing rule (rule None) or change one; its queue, if any, must belong to its service. Audited."""
    queue = db.session.get(Queue, queue_id) if queue_id else None
    if queue is not None and queue.service_id != service_id:
        raise ValidationFailed("Check the rule", {"queue_id": ["that queue belongs to another service"]})
    created = rule is None
    if created:
        rule = RoutingRule()
        db.session.add(rule)
    rule.position = position or 0
    rule.category_code = category_code
    rule.keywords = ", ".join(k.strip() for k in (keywords or "").split(",") if k.strip()) or None
    rule.service_id = service_id
    rule.queue_id = queue.id if queue else None
    rule.priority = priority
    rule.sla_hours = sla_hours
    rule.active = active
    db.session.flush()
    if created:
        audit(actor, "routing_rule.create", "routing_rule", rule.id, category=rule.category_code,
              service_id=rule.service_id)
    else:
        audit(actor, "routing_rule.update", "routing_rule", rule.id, category=rule.category_code,
              service_id=rule.service_id, keywords=rule.keywords, sla_hours=rule.sla_hours)
    return rule


def delete_rule(rule: RoutingRule, actor) -> None:
    """Delete a routing rule (cases already routed keep their service). Audited."""
    audit(actor, "routing_rule.delete", "routing_rule", rule.id, category=rule.category_code,
          service_id=rule.service_id)
    db.session.delete(rule)
