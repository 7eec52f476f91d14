"""The report tables: the same rows feed the page (under each chart) and the CSV downloads."""
from dataclasses import dataclass, field

from ..knowledge.notices import notice_demand
from ..models import CHANNELS, PRESENCE_STATES
from . import reports
from .reports import ReportFilters

SUPPRESSED = "[c]"  # the GSS marker for a value withheld for confidentiality


@dataclass
class Table:
    """A titled table: a header and rows of plain values."""

    name: str
    title: str
    header: list[str]
    rows: list[list] = field(default_factory=list)


def _channels_seen(*mappings) -> list[str]:
    seen = set()
    for mapping in mappings:
        seen.update(mapping)
    return [c for c in CHANNELS if c in seen] + sorted(seen - set(CHANNELS))


def contact_tables(report: dict) -> list[Table]:
    """Tables of the contacts report: by channel, outcome, category and period."""
    costs = reports.channel_costs()
    channels = Table("channels", "Contacts by channel",
                     ["channel", "contacts", "average_handle_seconds", "cost_per_contact_gbp",
                      "estimated_cost_gbp"])
    for channel, count in report["by_channel"].items():
        channels.rows.append([channel, count, report["average_handle_seconds"].get(channel),
                              round(costs.get(channel, costs["phone"]) / 100, 2),
                              report["estimated_cost_gbp"].get(channel)])
    outcomes = Table("outcomes", "Contacts by outcome", ["outcome", "contacts"],
                     [[k, v] for k, v in report["by_outcome"].items()])
    categories = Table("categories", "Contacts by category", ["category", "contacts"],
                       [[k, v] for k, v in report["by_category"].items()])
    seen = _channels_seen(*[{k for k in row if k != "period"} for row in report["series"]])
    periods = Table("periods", f"Contacts by {report['series_unit']} and channel",
                    [report["series_unit"], *seen, "total"])
    for row in report["series"]:
        counts = [row.get(c, 0) for c in seen]
        periods.rows.append([row["period"], *counts, sum(counts)])
    return [channels, outcomes, categories, periods]


def summary_rows(report: dict) -> list[list]:
    """Return the contract's contacts figures in long form: metric, key, value."""
    rows = [["total", "", report["total"]]]
    rows += [["by_channel", k, v] for k, v in report["by_channel"].items()]
    rows += [["by_outcome", k, v] for k, v in report["by_outcome"].items()]
    rows.append(["first_contact_resolution", "", report["first_contact_resolution"]])
    rows += [["average_handle_seconds", k, v] for k, v in report["average_handle_seconds"].items()]
    rows += [["estimated_cost_gbp", k, v] for k, v in report["estimated_cost_gbp"].items()]
    rows.append(["all_phone_baseline_gbp", "", report["all_phone_baseline_gbp"]])
    rows.append(["saving_gbp", "", report["saving_gbp"]])
    return rows


def summary_table(report: dict) -> Table:
    """The contacts report as one long table (the API's CSV)."""
    return Table("summary", "Contacts summary", ["metric", "key", "value"], summary_rows(report))


def sla_table(rows: list[dict]) -> Table:
    table = Table("sla", "SLA met per service",
                  ["service", "name", "cases", "first_response_measured", "first_response_met",
                   "first_response_met_ratio", "resolution_measured", "resolution_met", "resolution_met_ratio"])
    for r in rows:
        table.rows.append([r[h] for h in table.header])
    return table


def failure_demand_table(result: dict) -> Table:
    table = Table("failure-demand", "Repeat contacts about open cases: top causes",
                  ["service", "category", "repeat_contacts", "cases"])
    for r in result["top_causes"]:
        table.rows.append([r[h] for h in table.header])
    return table


def agent_states_table(rows: list[dict]) -> Table:
    states = list(PRESENCE_STATES)
    table = Table("agent-states", "Agent states (hours)", ["agent", *[f"{s}_hours" for s in states], "changes"])
    for r in rows:
        table.rows.append([r["name"], *[round(r["seconds"].get(s, 0) / 3600, 2) for s in states], r["changes"]])
    return table


def channel_shift_table(result: dict) -> Table:
    seen = _channels_seen(*[m["contacts"] for m in result["months"]])
    table = Table("channel-shift", "Channel shift: contacts and estimated cost per month",
                  ["month", *seen, "total", "self_service_share", "estimated_cost_gbp",
                   "all_phone_baseline_gbp", "saving_gbp"])
    for m in result["months"]:
        table.rows.append([m["month"], *[m["contacts"].get(c, 0) for c in seen], m["total"],
                           m["self_service_share"], m["estimated_cost_gbp"], m["all_phone_baseline_gbp"],
                           m["saving_gbp"]])
    return table


def open_data_table(rows: list[dict]) -> Table:
    table = Table("open-data", "Contacts and cases by category and month (small counts suppressed)",
                  ["month", "category", "category_name", "contacts", "cases"])
    for r in rows:
        table.rows.append([r["month"], r["category"], r["category_name"],
                           SUPPRESSED if r["contacts"] is None else r["contacts"],
                           SUPPRESSED if r["cases"] is None else r["cases"]])
    return table


def notice_demand_table(rows: list[dict]) -> Table:
    table = Table("notice-demand", "Contacts about a service while its notice was live",
                  ["service", "notice", "areas", "from", "to", "contacts"])
    for r in rows:
        table.rows.append([r["service"], r["message"], r["areas"] or "all", r["from"].date().isoformat(),
                           r["to"].date().isoformat(), r["contacts"]])
    return table


def report_page_data(filters: ReportFilters) -> tuple[dict, dict[str, Table]]:
    """Compute each report of the page once; return (results by name, tables by name)."""
    results = {
        "contacts": reports.contacts_report(filters),
        "shift": reports.channel_shift(filters),
        "sla": reports.sla_report(filters),
        "failure": reports.failure_demand(filters),
        "states": reports.agent_states(filters),
        "notices": notice_demand(filters.start_at, filters.end_at),
    }
    built = contact_tables(results["contacts"]) + [
        sla_table(results["sla"]),
        failure_demand_table(results["failure"]),
        agent_states_table(results["states"]),
        channel_shift_table(results["shift"]),
        summary_table(results["contacts"]),
        notice_demand_table(results["notices"]),
    ]
    return results, {t.name: t for t in built}


def one_table(name: str, filters: ReportFilters) -> Table | None:
    """Compute only the report behind one table (for its CSV download)."""
    builders = {
        "sla": lambda: sla_table(reports.sla_report(filters)),
        "failure-demand": lambda: failure_demand_table(reports.failure_demand(filters)),
        "agent-states": lambda: agent_states_table(reports.agent_states(filters)),
        "channel-shift": lambda: channel_shift_table(reports.channel_shift(filters)),
        "open-data": lambda: open_data_table(reports.open_data(filters)),
        "notice-demand": lambda: notice_demand_table(notice_demand(filters.start_at, filters.end_at)),
        "summary": lambda: summary_table(reports.contacts_report(filters)),
    }
    if name in builders:
        return builders[name]()
    if name in ("channels", "outcomes", "categories", "periods"):
        return {t.name: t for t in contact_tables(reports.contacts_report(filters))}[name]
    return None
