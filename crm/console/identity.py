"""Console pages for who a customer is: contact details, the possible-duplicates queue, merge and unmerge."""
from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import visibility
from ..auth.access import roles_required
from ..auth.roles import DUPLICATE_REVIEWERS, FRONT_LINE
from ..customers import details
from ..customers.duplicates import (
    cases_held, contacts_held, dismiss_duplicate, get_duplicate, list_duplicates, merge_duplicate, open_duplicates_of,
)
from ..customers.identity import live_customer
from ..customers.merge import merges_into, unmerge, unmerge_window
from ..errors import NotFound
from ..extensions import db
from ..web import act
from ..models import Customer, CustomerMerge
from . import bp


def _live_customer_or_404(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}")
    return visibility.check_customer(current_user, live_customer(customer))


def _int(name: str):
    """Read a whole number from the posted form; None when missing or not a number."""
    raw = (request.form.get(name) or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def identity_panel(customer) -> dict:
    """Return what the customer page shows about who this is: claimed-only, duplicates, undoable merges."""
    from ..portal.accounts import PREFERRED_CHANNELS, account_of  # noqa: PLC0415  (the portal area is separate)

    claimed = [i for i in customer.identities if i.kind in ("email", "phone") and not i.verified]
    account = account_of(customer)
    reviewer = current_user.has_role(*DUPLICATE_REVIEWERS)
    return {
        "claimed_only": not customer.has_verified_identity and bool(claimed),
        "claimed_sources": sorted({i.source or "unknown" for i in claimed}),
        "duplicates": open_duplicates_of(customer),
        "merges": merges_into(customer) if reviewer else [],
        "reviewer": reviewer,
        "preferred_channel": PREFERRED_CHANNELS.get(customer.preferred_channel, customer.preferred_channel),
        "account": account,
    }


def _act(customer_id, action, success: str):
    """Run one contact-details edit, commit, and return to the details page."""
    customer = _live_customer_or_404(customer_id)
    back = lambda *_: redirect(url_for("console.customer_details", customer_id=customer.id), 303)  # noqa: E731
    return act(lambda: action(customer), success, back, back)


@bp.route("/customers/<int:customer_id>/details")
@roles_required(*FRONT_LINE)
def customer_details(customer_id):
    """Edit a customer's name, emails, phones and addresses, and say which are main."""
    customer = _live_customer_or_404(customer_id)
    return render_template("console/customer_details.html", customer=customer)


@bp.route("/customers/<int:customer_id>/details/name", methods=["POST"])
@roles_required(*FRONT_LINE)
def rename_customer(customer_id):
    """Correct the name."""
    return _act(customer_id, lambda c: details.rename(c, request.form.get("name", ""), current_user), "Name saved.")


@bp.route("/customers/<int:customer_id>/details/identities", methods=["POST"])
@roles_required(*FRONT_LINE)
def add_identity_view(customer_id):
    """Add an email or phone."""
    return _act(customer_id, lambda c: details.add_contact_detail(
        c, request.form.get("kind", ""), request.form.get("value", "")[:254], current_user,
        confirmed=request.form.get("confirmed") == "y", main=request.form.get("main") == "y"), "Detail added.")


@bp.route("/customers/<int:customer_id>/details/identities/<int:identity_id>/<string:action>", methods=["POST"])
@roles_required(*FRONT_LINE)
def identity_action(customer_id, identity_id, action):
    """Make a detail main, confirm it with the caller, or remove it."""
    actions = {"main": (details.set_main_identity, "Main detail changed."),
               "confirm": (details.confirm_identity, "Marked as confirmed with the customer."),
               "remove": (details.remove_identity, "Detail removed.")}
    if action not in actions:
        raise NotFound("No such action")
    run, message = actions[action]
    return _act(customer_id, lambda c: run(c, identity_id, current_user), message)


@bp.route("/customers/<int:customer_id>/details/addresses", methods=["POST"])
@roles_required(*FRONT_LINE)
def add_address_view(customer_id):
    """Add a postal address."""
    fields = {k: request.form.get(k, "")[:200] for k in ("line1", "line2", "town", "postcode")}
    return _act(customer_id, lambda c: details.add_contact_address(
        c, fields, current_user, main=request.form.get("main") == "y"), "Address added.")


@bp.route("/customers/<int:customer_id>/details/addresses/<int:address_id>", methods=["POST"])
@roles_required(*FRONT_LINE)
def update_address_view(customer_id, address_id):
    """Correct an address, or make it the main one."""
    if request.form.get("action") == "main":
        return _act(customer_id, lambda c: details.set_main_address(c, address_id, current_user),
                    "Main address changed.")
    fields = {k: request.form.get(k, "")[:200] for k in ("line1", "line2", "town", "postcode")}
    return _act(customer_id, lambda c: details.update_address(c, address_id, fields, current_user), "Address saved.")


@bp.route("/duplicates")
@roles_required(*DUPLICATE_REVIEWERS)
def duplicates():
    """The queue of possible duplicate customers."""
    status = request.args.get("status", "open")
    if status not in ("open", "merged", "dismissed"):
        status = "open"
    rows = [row for row in list_duplicates(status, 100)
            if visibility.can_see_customer(current_user, row.customer)
            and visibility.can_see_customer(current_user, row.other)]
    return render_template("console/duplicates.html", rows=rows, status=status)


@bp.route("/duplicates/<int:duplicate_id>")
@roles_required(*DUPLICATE_REVIEWERS)
def duplicate(duplicate_id):
    """Two records side by side: merge them (choosing the main details) or dismiss the pair."""
    row = get_duplicate(duplicate_id)
    visibility.check_customer(current_user, row.customer)
    visibility.check_customer(current_user, row.other)
    return render_template("console/duplicate.html", row=row, contacts_held=contacts_held, cases_held=cases_held,
                           window_days=unmerge_window().days)


@bp.route("/duplicates/<int:duplicate_id>/merge", methods=["POST"])
@roles_required(*DUPLICATE_REVIEWERS)
def merge_duplicate_view(duplicate_id):
    """Merge a queued pair."""
    row = get_duplicate(duplicate_id)
    keep = request.form.get("keep", "other")
    keep_name = request.form.get("keep_name", "target")
    if keep not in ("other", "customer") or keep_name not in ("target", "source"):
        flash("Choose which record to keep and whose name.", "error")
        return redirect(url_for("console.duplicate", duplicate_id=row.id), 303)
    main = {kind: _int(f"main_{kind}") for kind in ("email", "phone", "address")}

    def merge():
        a, b = live_customer(row.customer), live_customer(row.other)
        source, target = (a, b) if keep == "other" else (b, a)
        visibility.check_customer_merge(current_user, source, target)
        return merge_duplicate(row, current_user, keep=keep, keep_name=keep_name, main=main)

    return act(merge, f"Merged. You can undo this from the customer page for {unmerge_window().days} days.",
               lambda merged: redirect(url_for("console.customer", customer_id=merged.id), 303),
               lambda error: redirect(url_for("console.duplicate", duplicate_id=row.id), 303))


@bp.route("/duplicates/<int:duplicate_id>/dismiss", methods=["POST"])
@roles_required(*DUPLICATE_REVIEWERS)
def dismiss_duplicate_view(duplicate_id):
    """Record that the pair are different people."""
    row = get_duplicate(duplicate_id)

    def dismiss():
        visibility.check_customer(current_user, row.customer)
        visibility.check_customer(current_user, row.other)
        dismiss_duplicate(row, current_user, request.form.get("note", ""))

    return act(dismiss, "Dismissed: these records stay separate.",
               lambda _: redirect(url_for("console.duplicates"), 303),
               lambda error: redirect(url_for("console.duplicate", duplicate_id=row.id), 303))


@bp.route("/customers/<int:customer_id>/unmerge/<int:merge_id>", methods=["POST"])
@roles_required(*DUPLICATE_REVIEWERS)
def unmerge_view(customer_id, merge_id):
    """Undo a merge into this customer: both records come back as they were."""
    record = db.session.get(CustomerMerge, merge_id)
    if record is None or record.target_id != customer_id:
        raise NotFound("No such merge into this customer")
    visibility.check_customer(current_user, db.session.get(Customer, customer_id))
    return act(lambda: unmerge(record, current_user, request.form.get("reason", "")),
               lambda restored: f"Merge undone: {restored.name} (#{restored.id}) is a separate record again.",
               lambda restored: redirect(url_for("console.customer", customer_id=restored.id), 303),
               lambda error: redirect(url_for("console.customer", customer_id=customer_id), 303))
