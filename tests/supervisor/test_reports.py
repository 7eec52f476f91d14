"""Reports: the contacts figures of the contract, CSV shape, open-data suppression, bad input."""
import csv
import io
from datetime import timedelta

import pytest

from crm.extensions import db
from crm.models import AgentStateChange, Category, Contact
from crm.supervisor import reports
from crm.supervisor.reports import ReportFilters

from .conftest import NOW, at

DAY = NOW.date()


def _rows(response):
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_contacts_report_counts_inbound_contacts_of_the_range(app, scripted_day, supervisor_headers):
    resident = scripted_day.customer
    db.session.add(Contact(customer_id=resident.id, channel="web_form", outcome="pending",
                           occurred_at=at("12:30"), summary="form"))
    db.session.add(Contact(customer_id=resident.id, channel="email", direction="outbound",
                           occurred_at=at("12:40"), summary="reply"))
    db.session.commit()
    response = app.test_client().get(f"/api/v1/reports/contacts?from={DAY}&to={DAY}", headers=supervisor_headers)
    assert response.status_code == 200
    body = response.get_json()
    # Today: a call, a chat, an email and a form; the outbound reply and yesterday's call are out.
    assert body["by_channel"] == {"email": 1, "phone": 1, "web_form": 1, "webchat": 1}
    assert body["by_outcome"] == {"case_raised": 1, "pending": 1, "resolved_first_time": 1, "signposted": 1}
    # One resolved of the three with a final outcome (the pending form is not counted).
    assert body["first_contact_resolution"] == pytest.approx(1 / 3, abs=1e-4)
    assert body["average_handle_seconds"] == {"phone": 600, "webchat": 300}
    assert body["estimated_cost_gbp"] == {"email": 2.83, "phone": 2.83, "web_form": 0.15, "webchat": 2.83}
    assert body["all_phone_baseline_gbp"] == pytest.approx(4 * 2.83)
    assert body["saving_gbp"] == pytest.approx(2.83 - 0.15)


def test_a_wider_range_takes_in_yesterday(app, scripted_day):
    report = reports.contacts_report(ReportFilters(DAY - timedelta(days=1), DAY))
    assert report["by_channel"]["phone"] == 2
    assert [row["period"] for row in report["series"]] == [str(DAY - timedelta(days=1)), str(DAY)]
    assert report["series"][0] == {"period": str(DAY - timedelta(days=1)), "phone": 1}


def test_days_are_council_days_in_summer_time(app, scripted_day):
    resident = scripted_day.customer
    # 23:30 UTC on 30 June is 00:30 on 1 July in London.
    late = NOW.replace(month=6, day=30, hour=23, minute=30)
    db.session.add(Contact(customer_id=resident.id, channel="phone", occurred_at=late, summary="late",
                           outcome="resolved_first_time"))
    db.session.commit()
    june = reports.contacts_report(ReportFilters(late.date().replace(day=1), late.date()))
    july = reports.contacts_report(ReportFilters(late.date() + timedelta(days=1), late.date() + timedelta(days=1)))
    assert june["total"] == 0 and july["total"] == 1


def test_filters_by_channel_service_and_queue(app, scripted_day):
    resident = scripted_day.customer
    chat = scripted_day.conversations["c3"]
    db.session.add(Contact(customer_id=resident.id, channel="webchat", occurred_at=at("13:45"), summary="chat",
                           outcome="resolved_first_time", category="missed_bin", conversation_id=chat.id))
    db.session.commit()
    assert reports.contacts_report(ReportFilters(DAY, DAY, channel="phone"))["total"] == 1
    # Highways owns "pothole": the three scripted contacts of today, not the missed bin.
    assert reports.contacts_report(ReportFilters(DAY, DAY, service="highways"))["total"] == 3
    assert reports.contacts_report(ReportFilters(DAY, DAY, queue="chat"))["by_channel"] == {"webchat": 1}


def test_contacts_report_csv_is_long_form(app, scripted_day, supervisor_headers):
    response = app.test_client().get(f"/api/v1/reports/contacts?from={DAY}&to={DAY}&format=csv",
                                     headers=supervisor_headers)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = _rows(response)
    assert rows[0] == ["metric", "key", "value"]
    assert all(len(row) == 3 for row in rows)
    assert ["by_channel", "phone", "1"] in rows
    assert ["first_contact_resolution", "", "0.3333"] in rows


@pytest.mark.parametrize("query", [
    "from=2026-13-01", "from=yesterday", "from=2026-11-24&to=2026-11-01", "format=xml",
    "channel=pigeon", "from=2020-01-01&to=2026-01-01", "service=nowhere", "colour=blue",
])
def test_bad_report_input_is_a_4xx(app, scripted_day, supervisor_headers, query):
    response = app.test_client().get(f"/api/v1/reports/contacts?{query}", headers=supervisor_headers)
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert "error" in response.get_json()


def test_agents_are_refused_reports(app, agent_headers, agent_client):
    assert app.test_client().get("/api/v1/reports/contacts", headers=agent_headers).status_code == 403
    assert app.test_client().get("/api/v1/reports/open-data", headers=agent_headers).status_code == 403
    assert agent_client.get("/supervisor/reports/channels.csv").status_code == 403


def test_admins_may_read_reports(app, make_user, api_token):
    admin = make_user("admin")
    assert app.test_client().get("/api/v1/reports/contacts", headers=api_token(admin)).status_code == 200


def test_every_report_table_downloads_as_csv(app, scripted_day, supervisor_client):
    page = supervisor_client.get(f"/supervisor/reports?from={DAY}&to={DAY}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for name in ("channels", "outcomes", "categories", "periods", "sla", "failure-demand", "agent-states",
                 "channel-shift", "open-data"):
        assert f"/supervisor/reports/{name}.csv" in html
        response = supervisor_client.get(f"/supervisor/reports/{name}.csv?from={DAY}&to={DAY}")
        assert response.status_code == 200, name
        rows = _rows(response)
        assert rows and len({len(row) for row in rows}) == 1, name  # a header, and rows as wide
    assert supervisor_client.get("/supervisor/reports/nothing.csv").status_code == 404
    assert supervisor_client.get("/supervisor/reports?from=junk").status_code == 400


def test_open_data_suppresses_small_counts(app, scripted_day, supervisor_headers):
    resident = scripted_day.customer
    db.session.add(Category(service_id=scripted_day.cases["k1"].service_id, code="fly_tipping", name="Fly-tipping"))
    for n in range(reports.SUPPRESS_BELOW):
        db.session.add(Contact(customer_id=resident.id, channel="web_form", occurred_at=at("09:00") + timedelta(minutes=n),
                               summary="form", category="fly_tipping", outcome="case_raised"))
    db.session.commit()
    response = app.test_client().get(f"/api/v1/reports/open-data?from={DAY}&to={DAY}", headers=supervisor_headers)
    body = response.get_json()
    cells = {(r["month"], r["category"]): r for r in body["items"]}
    month = DAY.strftime("%Y-%m")
    assert cells[(month, "fly_tipping")]["contacts"] == reports.SUPPRESS_BELOW  # at the threshold: shown
    assert cells[(month, "pothole")]["contacts"] is None  # three contacts: withheld
    assert cells[(month, "pothole")]["cases"] is None
    assert cells[(month, "fly_tipping")]["cases"] == 0
    assert body["suppressed_below"] == reports.SUPPRESS_BELOW
    text = app.test_client().get(f"/api/v1/reports/open-data?from={DAY}&to={DAY}&format=csv",
                                 headers=supervisor_headers).get_data(as_text=True)
    assert "rita" not in text.lower() and "Rita" not in text  # nothing about the resident
    rows = _rows_from(text)
    assert rows[0] == ["month", "category", "category_name", "contacts", "cases"]
    assert [month, "pothole", "Pothole", "[c]", "[c]"] in rows


def _rows_from(text):
    return list(csv.reader(io.StringIO(text)))


def test_sla_met_per_service(app, scripted_day):
    k1 = scripted_day.cases["k1"]
    # Raised today: k1 (answered in time), k2 (first response overdue). k3, k4 were raised before.
    k1.first_response_due_at, k1.first_responded_at = at("13:00"), at("12:00")
    scripted_day.cases["k2"].first_response_due_at = at("11:00")
    db.session.commit()
    (row,) = reports.sla_report(ReportFilters(DAY, DAY))
    assert (row["service"], row["cases"]) == ("highways", 2)
    assert (row["first_response_measured"], row["first_response_met"]) == (2, 1)
    assert row["first_response_met_ratio"] == 0.5
    assert row["resolution_measured"] == 0  # neither is resolved nor yet due
    week = reports.sla_report(ReportFilters(DAY - timedelta(days=6), DAY))[0]
    # k3 is overdue (not met); k4 was resolved before it was due (met).
    assert (week["resolution_measured"], week["resolution_met"]) == (2, 1)


def test_failure_demand_counts_chasers_of_open_cases(app, scripted_day):
    resident, k3 = scripted_day.customer, scripted_day.cases["k3"]
    raised = Contact(customer_id=resident.id, channel="phone", occurred_at=k3.created_at, summary="raised",
                     outcome="case_raised", case_id=k3.id)
    db.session.add(raised)
    db.session.flush()
    k3.raised_by_contact_id = raised.id
    for hour in ("09:30", "10:30"):
        db.session.add(Contact(customer_id=resident.id, channel="phone", occurred_at=at(hour), summary="chasing",
                               outcome="resolved_first_time", case_id=k3.id))
    k4 = scripted_day.cases["k4"]  # resolved at 11:00: a contact after that is not failure demand
    db.session.add(Contact(customer_id=resident.id, channel="email", occurred_at=at("12:00"), summary="thanks",
                           outcome="resolved_first_time", case_id=k4.id))
    db.session.commit()
    result = reports.failure_demand(ReportFilters(DAY - timedelta(days=7), DAY))
    assert result["repeat_contacts"] == 2
    assert result["top_causes"] == [{"service": "highways", "category": "pothole", "repeat_contacts": 2, "cases": 1}]


def test_agent_states_over_time_come_from_the_history(app, scripted_day):
    ada = scripted_day.users["ada"]
    db.session.query(AgentStateChange).delete()
    db.session.add_all([
        AgentStateChange(user_id=ada.id, status="available", at=at("08:00", days=-1)),
        AgentStateChange(user_id=ada.id, status="busy", at=at("10:00")),
        AgentStateChange(user_id=ada.id, status="away", at=at("12:00")),
    ])
    db.session.commit()
    (row,) = reports.agent_states(ReportFilters(DAY, DAY))
    # From midnight: available till 10:00, busy till 12:00, away till NOW (14:00).
    assert row["seconds"] == {"available": 10 * 3600, "away": 2 * 3600, "busy": 2 * 3600}
    assert row["changes"] == 2


def test_channel_shift_prices_each_month_against_all_phone(app, scripted_day, supervisor_client):
    report = reports.channel_shift(ReportFilters(DAY.replace(day=1), DAY))
    (month,) = report["months"]
    assert month["contacts"] == {"email": 1, "phone": 2, "webchat": 1}  # yesterday's call too
    assert month["saving_gbp"] == 0.0  # no self-service yet
    response = supervisor_client.post("/supervisor/reports/costs", data={
        "csrf_token": _csrf(supervisor_client), "cost_webchat": "1.50", "cost_email": "£2.00"})
    assert response.status_code == 302
    month = reports.channel_shift(ReportFilters(DAY.replace(day=1), DAY))["months"][0]
    assert month["estimated_cost_gbp"] == pytest.approx(2 * 2.83 + 2.00 + 1.50)
    assert month["saving_gbp"] == pytest.approx(4 * 2.83 - (2 * 2.83 + 2.00 + 1.50))
    refused = supervisor_client.post("/supervisor/reports/costs", data={
        "csrf_token": _csrf(supervisor_client), "cost_phone": "lots"})
    assert refused.status_code == 400
    assert reports.channel_costs()["phone"] == 283


def _csrf(client):
    from tests.conftest import csrf_from

    return csrf_from(client.get("/supervisor/").get_data(as_text=True))


def test_the_openapi_document_describes_the_supervisor_endpoints(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/queues", "/api/v1/reports/contacts", "/api/v1/reports/open-data",
                 "/api/v1/supervisor/agents/{agent_id}", "/api/v1/banners"):
        assert path in spec["paths"], path
    params = {p["name"] for p in spec["paths"]["/api/v1/reports/contacts"]["get"]["parameters"]}
    assert {"from", "to", "format"} <= params
