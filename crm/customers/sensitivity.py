"""Mark what is sensitive: a customer's vulnerability notes and restricted flag, a service's sensitivity.

Only staff the visibility policy lets read sensitive content may change it; every change is
audited (what changed, never the notes themselves). Functions here never commit.
"""
from typing import Optional

from .. import visibility
from ..audit import audit
from ..errors import Forbidden, ValidationFailed
from ..models import Customer, Service

MAX_NOTES = 5000


def set_vulnerability(actor, customer: Customer, notes: Optional[str]) -> Customer:
    """Set (or, with empty notes, clear) a customer's vulnerability notes."""
    if not visibility.can_edit_vulnerability(actor, customer):
        raise Forbidden("Only staff who need vulnerability notes may change them")
    notes = (notes or "").strip()
    if len(notes) > MAX_NOTES:
        raise ValidationFailed("Vulnerability notes are too long",
                               {"vulnerability_notes": [f"at most {MAX_NOTES} characters"]})
    before = bool(customer.vulnerability_notes)
    customer.vulnerability_notes = notes or None
    audit(actor, "customer.vulnerability_set" if notes else "customer.vulnerability_cleared", "customer",
          customer.id, had_notes=before)
    return customer


def set_restricted(actor, customer: Customer, restricted: bool) -> Customer:
    """Mark a customer's record restricted (only staff with a need read it), or lift the mark."""
    if not visibility.can_edit_vulnerability(actor, customer):
        raise Forbidden("Only staff who need restricted records may mark them")
    if not isinstance(restricted, bool):
        raise ValidationFailed("restricted must be true or false", {"restricted": ["true or false"]})
    if customer.restricted != restricted:
        customer.restricted = restricted
        audit(actor, "customer.restricted" if restricted else "customer.unrestricted", "customer", customer.id)
    return customer


def set_service_sensitive(actor, service: Service, sensitive: bool) -> Service:
    """Mark a service sensitive (its cases and conversations only for those who need them), or not."""
    if service.sensitive != sensitive:
        service.sensitive = sensitive
        audit(actor, "service.sensitive" if sensitive else "service.not_sensitive", "service", service.id,
              code=service.code)
    visibility.forget_services()
    return service
