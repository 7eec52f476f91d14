"""API: raise, read, work, merge and split cases; list services."""
from flask_login import current_user
from sqlalchemy import select

from ..api import api_blueprint
from ..auth.access import roles_required
from ..auth.roles import CASE_RAISERS, SERVICE_OFFICER
from ..customers.identity import live_customer
from ..errors import Forbidden, NotFound, ValidationFailed
from ..extensions import db
from ..models import Contact, Customer, User
from . import service as cases
from .queries import active_services, can_work, check_view, work_list
from .schemas import (
    AttachIn, CaseListArgs, CaseListOut, CaseOut, CasePatch, MergeCaseIn, NearbyArgs, NewCaseIn,
    ServiceList, SplitIn,
)

blp = api_blueprint("cases_api", __name__, "Cases: raise, route, work, merge and split", "/cases")
services_blp = api_blueprint("services_api", __name__, "Services and their categories", "/services")


def _contact(contact_id) -> Contact:
    contact = db.session.get(Contact, contact_id) if contact_id is not None else None
    if contact is None:
        raise NotFound(f"No contact {contact_id}", {"contact_id": ["unknown contact"]})
    return contact


def _workable(reference: str):
    case = cases.get_case(reference)
    check_view(current_user, case)
    if not can_work(current_user, case):
        raise Forbidden("You may not change this case")
    return case


def find_assignee(value):
    """Return the user an assignee field names (id or email), or None for the team."""
    if value is None:
        return None
    query = select(User).where(User.id == value) if isinstance(value, int) else select(User).where(
        User.email == value.lower())
    user = db.session.scalar(query)
    if user is None:
        raise ValidationFailed("Unknown assignee", {"assignee": [f"no staff user {value!r}"]})
    return user


@blp.get("")
@roles_required()
@blp.arguments(CaseListArgs, location="query")
@blp.response(200, CaseListOut)
def list_cases(args):
    """List a service's cases, most urgent first (service officers default to their own service)."""
    service_id = None
    if args["service"]:
        service_id = cases.find_service(args["service"]).id
    elif current_user.role == SERVICE_OFFICER:
        service_id = current_user.service_id
    items, has_next = work_list(
        service_id, status=args["status"], at_risk=args["at_risk"],
        assignee_id=current_user.id if args["assigned"] == "me" else None,
        unassigned=args["assigned"] == "nobody", page=args["page"], per_page=args["per_page"],
        viewer=current_user)
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "has_next": has_next}


@blp.post("")
@roles_required(*CASE_RAISERS)
@blp.arguments(NewCaseIn)
@blp.response(201, CaseOut)
def create(data):
    """Raise a case for a customer; routing settles service, queue, priority and SLA."""
    customer = live_customer(db.session.get(Customer, data["customer_id"]))
    if customer is None:
        raise NotFound(f"No customer {data['customer_id']}", {"customer_id": ["unknown customer"]})
    contact = _contact(data["contact_id"]) if data["contact_id"] is not None else None
    case = cases.open_case(
        customer, data["service"], data["category"], data["title"], data["description"],
        priority=data["priority"], actor=current_user, contact=contact,
        source_channel=contact.channel if contact else "phone",
        location_address=data["location_address"], latitude=data["latitude"], longitude=data["longitude"])
    db.session.commit()
    return case


@blp.get("/nearby")
@roles_required()
@blp.arguments(NearbyArgs, location="query")
@blp.response(200, CaseListOut)
def nearby(args):
    """Suggest open cases of a category near a point or address (attach instead of duplicating)."""
    found = cases.nearby_open_cases(args["category"], latitude=args["lat"], longitude=args["long"],
                                    address=args["address"], radius_m=args["radius"], viewer=current_user)
    return {"items": found, "page": 1, "per_page": len(found), "has_next": False}


@blp.get("/<reference>")
@roles_required()
@blp.response(200, CaseOut)
def read(reference):
    """Return a case with its full history."""
    case = cases.get_case(reference)
    check_view(current_user, case)
    return case


@blp.patch("/<reference>")
@roles_required(*CASE_RAISERS)
@blp.arguments(CasePatch)
@blp.response(200, CaseOut)
def patch(data, reference):
    """Work a case: re-route, assign, move status, add an internal note or a public update."""
    case = cases.get_case(reference)
    check_view(current_user, case)
    # Agents may leave a note (the resident rang about it); everything else is the owner's work.
    if set(data) - {"note"} and not can_work(current_user, case):
        raise Forbidden("You may not change this case")
    reason = data.get("reason")
    if "service" in data:
        cases.reroute_case(case, data["service"], current_user, category=data.get("category"), reason=reason)
    if "assignee" in data:
        cases.assign_case(case, find_assignee(data["assignee"]), current_user)
    if "status" in data:
        cases.change_status(case, data["status"], current_user, reason=reason)
    if "note" in data:
        cases.add_note(case, data["note"], current_user)
    if "public_update" in data:
        cases.post_public_update(case, data["public_update"], current_user)
    db.session.commit()
    return case


@blp.post("/<reference>/merge")
@roles_required(*CASE_RAISERS)
@blp.arguments(MergeCaseIn)
@blp.response(200, CaseOut)
def merge(data, reference):
    """Merge this (duplicate) case into the case named by `into`; returns the kept case."""
    source = _workable(reference)
    target = cases.get_case(data["into"])
    check_view(current_user, target)
    if not can_work(current_user, target):
        raise Forbidden("You may not change this case")
    kept = cases.merge_cases(source, target, current_user, data["reason"])
    db.session.commit()
    return kept


@blp.post("/<reference>/split")
@roles_required(*CASE_RAISERS)
@blp.arguments(SplitIn)
@blp.response(201, CaseOut)
def split(data, reference):
    """Take a contact off this case into a new case of its own; returns the new case."""
    case = _workable(reference)
    new_case = cases.split_contact(case, _contact(data["contact_id"]), current_user, title=data["title"],
                                   service_code=data["service"], category=data["category"])
    db.session.commit()
    return new_case


@blp.post("/<reference>/contacts")
@roles_required(*CASE_RAISERS)
@blp.arguments(AttachIn)
@blp.response(200, CaseOut)
def attach(data, reference):
    """Attach a contact to this existing case (known-issue deflection)."""
    case = cases.get_case(reference)
    check_view(current_user, case)
    cases.attach_contact(case, _contact(data["contact_id"]), current_user)
    db.session.commit()
    return case


@services_blp.get("")
@roles_required()
@services_blp.response(200, ServiceList)
def list_services():
    """List the active services with their category codes and SLA hours."""
    return {"items": active_services()}
