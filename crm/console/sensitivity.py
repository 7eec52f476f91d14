"""Console: set or clear a customer's vulnerability notes and restricted flag (staff who need them)."""
from flask import flash, redirect, url_for
from flask_login import current_user

from .. import visibility
from ..auth.access import roles_required
from ..customers.sensitivity import set_restricted, set_vulnerability
from ..errors import NotFound
from ..extensions import db
from ..models import Customer
from . import bp
from .forms import SensitivityForm


@bp.route("/customers/<int:customer_id>/sensitivity", methods=["POST"])
@roles_required()
def sensitivity(customer_id):
    """Save the vulnerability notes and the restricted mark, then go back to the customer page."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}")
    visibility.check_customer(current_user, customer)
    form = SensitivityForm()
    if not form.validate_on_submit():
        flash("Not saved: " + "; ".join(m for ms in form.errors.values() for m in ms), "error")
        return redirect(url_for("console.customer", customer_id=customer.id))
    set_vulnerability(current_user, customer, form.vulnerability_notes.data)
    set_restricted(current_user, customer, bool(form.restricted.data))
    db.session.commit()
    flash("Vulnerability notes and restriction saved.", "success")
    return redirect(url_for("console.customer", customer_id=customer.id))
