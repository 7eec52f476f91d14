"""Routing: rules decide service, queue, priority and SLA once, for every channel; re-routing keeps history."""
import pytest

from crm.cases.notify import case_routed
from crm.cases.service import assign_case, open_case, reroute_case
from crm.errors import Conflict, ValidationFailed
from crm.models import AuditLog, Case, CaseEvent, Queue, RoutingRule
from tests import factories


@pytest.fixture
def services(app, db):
    highways = factories.service("highways", "Highways", categories=(("pothole", "Pothole"),
                                                                     ("flooding", "Flooding")), sla_hours=40)
    waste = factories.service("waste", "Waste", categories=(("fly_tipping", "Fly-tipping"),), sla_hours=20)
    return highways, waste


def events_of(db, case):
    return [(e.kind, e.from_value, e.to_value) for e in db.session.query(CaseEvent).filter_by(case_id=case.id)
            .order_by(CaseEvent.id)]


def test_the_category_rule_routes_when_no_service_is_given(services, db):
    highways, _ = services
    case = open_case(factories.customer(), None, "pothole", "Hole outside number 4")
    db.session.commit()
    assert case.service_id == highways.id
    assert case.queue.code == "highways_cases"
    assert case.sla_hours == 40
    assert ("routed", None, "Highways") in events_of(db, case)


def test_a_keyword_rule_placed_first_wins_when_its_keyword_appears(services, db):
    highways, waste = services
    urgent_queue = Queue(code="highways_urgent", name="Highways urgent", channel="cases", service_id=highways.id)
    db.session.add(urgent_queue)
    db.session.flush()
    db.session.add(RoutingRule(position=1, category_code="pothole", keywords="school, hospital",
                               service_id=highways.id, queue_id=urgent_queue.id, priority="urgent", sla_hours=4))
    db.session.commit()
    near_school = open_case(factories.customer(), "highways", "pothole", "Pothole by the school gates")
    elsewhere = open_case(factories.customer(), "highways", "pothole", "Pothole on a back lane",
                          "Nowhere near a schoolyard")  # "schoolyard" is not the word "school"
    db.session.commit()
    assert (near_school.queue_id, near_school.priority, near_school.sla_hours) == (urgent_queue.id, "urgent", 4)
    assert (elsewhere.queue.code, elsewhere.priority, elsewhere.sla_hours) == ("highways_cases", "normal", 40)


def test_an_admin_rule_can_send_a_category_to_another_service(services, db):
    highways, waste = services
    rule = db.session.query(RoutingRule).filter_by(category_code="flooding").one()
    rule.service_id, rule.queue_id, rule.sla_hours = waste.id, None, 8
    db.session.commit()
    case = open_case(factories.customer(), "highways", "flooding", "Water across the road")
    db.session.commit()
    assert case.service_id == waste.id
    assert case.queue.code == "waste_cases"
    assert case.sla_hours == 8


def test_an_inactive_rule_is_skipped_and_the_category_owner_takes_the_case(services, db):
    highways, waste = services
    for rule in db.session.query(RoutingRule).filter_by(category_code="pothole"):
        rule.active = False
    db.session.add(RoutingRule(position=0, category_code="pothole", service_id=waste.id, active=False))
    db.session.commit()
    case = open_case(factories.customer(), None, "pothole", "Hole")
    assert case.service_id == highways.id
    assert case.sla_hours == highways.sla_hours


def test_the_more_urgent_of_the_callers_and_the_rules_priority_is_kept(services, db):
    rule = db.session.query(RoutingRule).filter_by(category_code="pothole").one()
    rule.priority = "high"
    db.session.commit()
    assert open_case(factories.customer(), None, "pothole", "a", priority="low").priority == "high"
    assert open_case(factories.customer(), None, "pothole", "b", priority="urgent").priority == "urgent"
    assert open_case(factories.customer(), None, "pothole", "c").priority == "high"


@pytest.mark.parametrize("service, category, field", [
    ("nope", "pothole", "service"), ("highways", "fly_tipping", "category"), (None, "unheard_of", "category")])
def test_unknown_services_and_categories_are_refused(services, service, category, field):
    with pytest.raises(ValidationFailed) as refused:
        open_case(factories.customer(), service, category, "Something")
    assert field in refused.value.fields


def test_rerouting_is_an_event_keeps_history_resets_the_owner_and_tells_the_new_service(services, db, make_user):
    highways, waste = services
    officer = make_user("service_officer", service_id=highways.id)
    case = factories.case(factories.customer())
    assign_case(case, officer, officer)
    db.session.commit()
    heard = []
    receiver = lambda sender, **payload: heard.append(payload)  # noqa: E731
    case_routed.connect(receiver)
    try:
        reroute_case(case, "waste", officer, reason="Rubbish dumped in the hole, not a road defect")
        assert heard == []  # nothing is announced before the commit
        db.session.commit()
    finally:
        case_routed.disconnect(receiver)
    assert heard == [{"case_id": case.id, "service_id": waste.id, "queue_id": case.queue_id,
                      "assignee_id": None, "rerouted": True}]
    assert case.service_id == waste.id and case.assignee_id is None
    assert case.category == "fly_tipping"  # the old category means nothing to Waste
    assert case.queue.code == "waste_cases"
    kinds = events_of(db, case)
    assert ("routed", None, "Highways") in kinds
    assert ("rerouted", "Highways", "Waste") == kinds[-1]
    entry = db.session.query(AuditLog).filter_by(action="case.reroute").one()
    assert entry.details["from_service"] == "highways" and entry.details["to_service"] == "waste"


def test_rerouting_to_the_same_service_or_a_closed_case_is_refused(services, db):
    case = factories.case(factories.customer())
    with pytest.raises(Conflict):
        reroute_case(case, "highways")
    case.status = "closed"
    with pytest.raises(Conflict):
        reroute_case(case, "waste")


def test_only_officers_of_the_cases_service_can_be_assigned(services, db, make_user):
    highways, waste = services
    case = factories.case(factories.customer())
    with pytest.raises(ValidationFailed):
        assign_case(case, make_user("service_officer", service_id=waste.id))
    officer = make_user("service_officer", service_id=highways.id)
    event = assign_case(case, officer)
    assert event.to_value == officer.name
    assert assign_case(case, officer) is None  # no change, no event
    back = assign_case(case, None)
    assert back.to_value == "Highways team"


def test_every_channel_gets_the_same_routing(services, db, agent):
    from crm.channels.phone import CaseRequest, log_call

    _, raised = log_call(agent, caller={"name": "Pat", "phone": "07700 900111"},
                         case=CaseRequest(service="highways", category="pothole", title="Hole"))
    db.session.commit()
    assert raised.queue.code == "highways_cases"
    assert raised.sla_due_at is not None and raised.first_response_due_at is not None
    assert db.session.get(Case, raised.id).service.code == "highways"
