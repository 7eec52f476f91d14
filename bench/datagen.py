"""Build a large, realistic CRM database for benchmarks (SQLite or PostgreSQL).

Rows have the shape the services write: names with their search terms (`name_terms`),
lower-cased emails and E.164 phones (`normalise_email`, `normalise_phone`), addresses with
`normalise_postcode` / `postcode_key`, contacts in time order like `record_contact` writes
them, and cases with references and their events like `open_case` / `add_event`. The schema
comes from the migrations (`flask db upgrade`), never from create_all.

Use from Python (the repository root on sys.path):

    from bench.datagen import build
    info = build("sqlite:///bench/data/x.sqlite3", customers=200_000, contacts=2_000_000)
    info.heavy_customer_ids   # customers with thousands of contacts
    info.period_end           # "now" of the generated history (contacts run up to it)

or from the shell:

    .venv/bin/python bench/datagen.py --url postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench \\
        --schema bench_200k --customers 200000 --contacts 2000000

A database already built with the same parameters is reused (a `bench_manifest` table records
them); one built with other parameters is rebuilt. A database with tables but no manifest is
left alone unless `force=True` / `--force`, so a real database is never wiped by mistake.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Optional
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, inspect, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

# Bump when the generated data changes shape, so old benchmark databases are rebuilt.
GENERATOR_VERSION = 1
MANIFEST_TABLE = "bench_manifest"
BATCH_ROWS = 20_000
HISTORY_DAYS = 3 * 365

FIRST_NAMES = (
    "Oliver George Harry Jack Noah Charlie Jacob Alfie Freddie Oscar Leo Archie Thomas James William "
    "Joshua Henry Ethan Isaac Lucas Max Samuel Daniel Joseph Adam Alexander Edward Ewan Callum Liam "
    "John David Michael Peter Paul Andrew Robert Richard Stephen Mark Ian Graham Neil Stuart Craig "
    "Wayne Dean Gary Kevin Keith Brian Colin Derek Alan Malcolm Gordon Trevor Barry Geoffrey Roger "
    "Olivia Amelia Isla Ava Mia Lily Emily Isabella Sophia Grace Freya Poppy Ella Evie Charlotte "
    "Mary Susan Margaret Helen Linda Janet Carol Ann Christine Elizabeth Karen Patricia Sarah Gillian "
    "Alison Joanne Fiona Emma Rachel Hannah Morag Catherine Jennifer Nicola Claire Lisa Michelle "
    "Deborah Julie Tracey Dawn Sandra Pauline Brenda Eileen Doreen Irene Jean Shirley Valerie Wendy "
    "Aisha Mohammed Priya Raj Anjali Wei Mei Piotr Agnieszka Tomasz Katarzyna Siobhan Aoife Niamh "
    "Mary-Jane Anne-Marie Jean-Paul"
).split()
SURNAMES = (
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker "
    "White Roberts Green Hall Wood Jackson Clarke Patel Khan Lewis James Phillips Mason Mitchell Rose "
    "Davis Rodriguez Cox Alexander Morgan Moore Clark Scott Allen Baker Harris Turner Hill Cooper "
    "Ward Morris King Watson Young Lee Parker Bennett Armstrong Graham Bell Elliot Nixon Irving Robson "
    "Dixon Routledge Hodgson Atkinson Holliday Tweddle Bowness Fisher Tyson Birkett Benson Dobson "
    "Hetherington Pattinson Stamper Relph Nicholson Todd Teasdale Harrison Moffat Lowther Musgrave "
    "Salkeld Fell Kirkbride Sewell Ritson Wharton Jefferson Bainbridge Thwaite Sowerby Hindmoor "
    "Steele Carruthers Little Maxwell Johnstone Irwin Bowman Rigg Hutchinson Richardson Stephenson "
    "Telford Pearson Mossop Postlethwaite Airey Harker Lancaster Kendall Sanderson Waugh Cowan "
    "Brennan Murphy O'Neill O'Brien McDonald MacKenzie McLaughlin Fitzgerald Nowak Kowalski Singh "
    "Ahmed Ali Hussain Begum Chen Wang Nguyen Ozturk Rossi Silva Smith-Jones Hughes-Wright "
    "Ashworth Braithwaite Crosthwaite Dowthwaite Gaskell Heslop Metcalfe Nelson Ormerod Procter "
    "Quayle Rawlinson Swainson Tinkler Usher Varty Wilkinson Yates Addison Bateman Coulthard "
    "Dalzell Errington Featherstone Glaister Hewitson Inman Jardine Kirkpatrick Lightfoot"
).split()
MIDDLE_NAME_RATE = 0.1
EMAIL_DOMAINS = ("example.org", "example.com", "example.net", "mail.example.org", "post.example.com")
# Outward codes of Cumbria and the towns they serve.
OUTWARDS = [
    ("Carlisle", ["CA1", "CA2", "CA3", "CA4", "CA5", "CA6"]), ("Wigton", ["CA7"]),
    ("Brampton", ["CA8"]), ("Alston", ["CA9"]), ("Penrith", ["CA10", "CA11"]),
    ("Keswick", ["CA12"]), ("Cockermouth", ["CA13"]), ("Workington", ["CA14"]),
    ("Maryport", ["CA15"]), ("Appleby-in-Westmorland", ["CA16"]), ("Kirkby Stephen", ["CA17"]),
    ("Seascale", ["CA20"]), ("Egremont", ["CA22"]), ("Whitehaven", ["CA25", "CA26", "CA28"]),
    ("Kendal", ["LA8", "LA9"]), ("Sedbergh", ["LA10"]), ("Grange-over-Sands", ["LA11"]),
    ("Ulverston", ["LA12"]), ("Barrow-in-Furness", ["LA13", "LA14"]), ("Dalton-in-Furness", ["LA15"]),
    ("Millom", ["LA18"]), ("Coniston", ["LA21"]), ("Ambleside", ["LA22"]), ("Windermere", ["LA23"]),
]
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the letters Royal Mail uses in inward codes
STREETS = ("Main Street", "Church Lane", "Station Road", "Fell View", "Lowther Street", "Botchergate",
           "Stricklandgate", "Lake Road", "Market Place", "Scotch Street", "Brunswick Road", "Greenside",
           "Beck Side", "Castle Street", "Victoria Road", "Mill Lane", "Park Road", "The Green")
LANDLINE_AREAS = ("1228", "1768", "1539", "1229", "1900", "1946", "17687", "15394")
CHANNEL_WEIGHTS = {"phone": 50, "email": 20, "web_form": 12, "webchat": 10, "face_to_face": 4,
                   "open311": 3, "letter": 1}
HANDLED_CHANNELS = {"phone", "webchat", "face_to_face"}
PRIORITY_WEIGHTS = {"normal": 80, "high": 12, "low": 5, "urgent": 3}


@dataclass
class BuildInfo:
    """What a build made (or found): sizes, the heavy customers and the generated period."""

    url: str
    customers: int
    contacts: int
    seed: int
    heavy_customers: int
    heavy_contacts: int
    case_rate: float
    generator_version: int = GENERATOR_VERSION
    cases: int = 0
    case_events: int = 0
    heavy_customer_ids: list[int] = field(default_factory=list)
    period_start: str = ""
    period_end: str = ""
    build_seconds: float = 0.0
    reused: bool = False

    def matches(self, other: "BuildInfo") -> bool:
        """Say whether two builds were asked for with the same parameters."""
        keys = ("customers", "contacts", "seed", "heavy_customers", "heavy_contacts", "case_rate",
                "generator_version")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


class Progress:
    """A one-line progress bar on stderr (quiet when disabled)."""

    def __init__(self, label: str, total: int, enabled: bool = True, stream=None):
        self.label, self.total, self.enabled = label, max(total, 1), enabled
        self.stream = stream or sys.stderr
        self.done, self.started, self.shown_at = 0, time.perf_counter(), 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and (now - self.shown_at > 0.25 or self.done >= self.total):
            self.shown_at = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        fraction = min(self.done / self.total, 1.0)
        filled = int(fraction * 30)
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        bar = "#" * filled + "-" * (30 - filled)
        self.stream.write(f"\r{self.label:<22} [{bar}] {self.done:>10,}/{self.total:,} "
                          f"{rate:>9,.0f}/s eta {eta:5.0f}s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            if self.done < self.total:
                self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()


def log(message: str, enabled: bool = True) -> None:
    """Write one line of progress to stderr."""
    if enabled:
        print(message, file=sys.stderr, flush=True)


def with_search_path(url: str, schema: Optional[str]) -> str:
    """Return a PostgreSQL URL whose connections use `schema` first (other URLs unchanged)."""
    if not schema or not url.startswith("postgresql"):
        return url
    option = "options=" + quote(f"-csearch_path={schema}")
    return url + ("&" if "?" in url else "?") + option


def absolute_sqlite_url(url: str) -> str:
    """Return a SQLite URL with an absolute path (Flask-SQLAlchemy would read a relative one
    from the instance folder); other URLs unchanged."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return url
    os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)  # bench/data/ on a fresh clone
    return parsed.set(database=os.path.abspath(parsed.database)).render_as_string(hide_password=False)


def _zipf_weights(n: int, exponent: float = 0.9) -> list[float]:
    return [1.0 / (rank + 1) ** exponent for rank in range(n)]


def _cumulative(weights: Iterable[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


class Generator:
    """Deterministic rows for one build; ids are assigned here so rows can point at each other."""

    def __init__(self, customers: int, contacts: int, seed: int, heavy_customers: int,
                 heavy_contacts: int, case_rate: float, end: datetime, reference: dict):
        from crm.customers.identity import (
            name_terms, normalise_email, normalise_phone, normalise_postcode, postcode_key,
        )
        from crm.cases.service import reference_for
        from crm.demo import NOTES

        self.name_terms, self.normalise_email, self.normalise_phone = name_terms, normalise_email, normalise_phone
        self.normalise_postcode, self.postcode_key, self.reference_for = (
            normalise_postcode, postcode_key, reference_for)
        self.notes = NOTES
        self.n_customers, self.n_contacts = customers, contacts
        self.rng = random.Random(seed)
        self.end = end
        self.start = end - timedelta(days=HISTORY_DAYS)
        self.case_rate = case_rate
        self.categories = reference["categories"]  # [(code, name, service_id)]
        self.services = reference["services"]  # {id: (name, sla_hours, cases_queue_id)}
        self.agent_ids = reference["agent_ids"]
        self.first_cum = _cumulative(_zipf_weights(len(FIRST_NAMES)))
        self.last_cum = _cumulative(_zipf_weights(len(SURNAMES)))
        self.channels, self.channel_cum = list(CHANNEL_WEIGHTS), _cumulative(CHANNEL_WEIGHTS.values())
        self.priorities, self.priority_cum = list(PRIORITY_WEIGHTS), _cumulative(PRIORITY_WEIGHTS.values())
        other_outcomes = {"resolved_first_time": 60, "signposted": 18, "transferred": 6, "abandoned": 6,
                          "pending": 10}
        scale = (1 - case_rate) / sum(other_outcomes.values())
        self.outcomes = list(other_outcomes) + ["case_raised"]
        self.outcome_cum = _cumulative([w * scale for w in other_outcomes.values()] + [case_rate])
        self.postcodes = self._postcode_pool(max(50, customers // 15))
        heavy_customers = min(heavy_customers, customers)
        self.heavy_ids = sorted(self.rng.sample(range(1, customers + 1), heavy_customers))
        self.heavy_share = min(heavy_customers * heavy_contacts / contacts, 0.5) if contacts else 0.0
        self.next_case_id = 1
        self.next_event_id = 1
        self.cases = 0
        self.case_events = 0

    def _postcode_pool(self, size: int) -> list[tuple[str, str]]:
        outwards = [(town, code) for town, codes in OUTWARDS for code in codes]
        pool, seen = [], set()
        while len(pool) < size:
            town, outward = self.rng.choice(outwards)
            raw = f"{outward}{self.rng.randint(0, 9)}{self.rng.choice(INWARD_LETTERS)}{self.rng.choice(INWARD_LETTERS)}"
            if raw not in seen:
                seen.add(raw)
                pool.append((town, raw))
        return pool

    def _pick(self, items, cum):
        return items[self._bisect(cum, self.rng.random() * cum[-1])]

    @staticmethod
    def _bisect(cum, x):
        lo, hi = 0, len(cum) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if cum[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        return lo

    # --- customers -------------------------------------------------------------------------

    def customer_batches(self, batch: int):
        """Yield dicts of rows per table for customers 1..N, `batch` customers at a time."""
        used_handles: set[str] = set()
        address_id = identity_id = 0
        for first_id in range(1, self.n_customers + 1, batch):
            rows = {"customers": [], "customer_name_terms": [], "customer_identities": [], "addresses": []}
            for cid in range(first_id, min(first_id + batch, self.n_customers + 1)):
                first = self._pick(FIRST_NAMES, self.first_cum)
                last = self._pick(SURNAMES, self.last_cum)
                middle = self._pick(FIRST_NAMES, self.first_cum) if self.rng.random() < MIDDLE_NAME_RATE else None
                name = " ".join(p for p in (first, middle, last) if p)
                created = self.start - timedelta(days=self.rng.randint(0, 2 * 365), seconds=self.rng.randint(0, 86399))
                rows["customers"].append({
                    "id": cid, "name": name, "merged_into_id": None, "vulnerability_notes": None,
                    "preferred_channel": None, "created_at": created, "updated_at": created,
                })
                for term in sorted(self.name_terms(name)):
                    rows["customer_name_terms"].append({"customer_id": cid, "term": term})
                identities = []
                if self.rng.random() < 0.85:
                    handle = f"{first}.{last}".lower().replace("'", "")
                    if handle in used_handles:
                        handle = f"{handle}{cid}"
                    used_handles.add(handle)
                    identities.append(("email", self.normalise_email(f"{handle}@{self.rng.choice(EMAIL_DOMAINS)}")))
                if self.rng.random() < 0.9:
                    # A bijection of the id onto 8 digits keeps mobiles unique without a lookup.
                    mobile = (cid * 2654435761 + 12345) % 10**8
                    identities.append(("phone", self.normalise_phone(f"077{mobile:08d}")))
                if self.rng.random() < 0.25:
                    area = LANDLINE_AREAS[(cid // 10**5) % len(LANDLINE_AREAS)]
                    local = (cid * 7919 + 1) % 10 ** (10 - len(area))
                    identities.append(("phone", self.normalise_phone(f"0{area}{local:0{10 - len(area)}d}")))
                for kind, value in identities:
                    identity_id += 1
                    rows["customer_identities"].append({
                        "id": identity_id, "customer_id": cid, "kind": kind, "value": value,
                        "verified": self.rng.random() < 0.3, "undeliverable": False,
                        "undeliverable_reason": None, "created_at": created,
                    })
                for _ in range(2 if self.rng.random() < 0.08 else 1):
                    town, raw = self.rng.choice(self.postcodes)
                    address_id += 1
                    rows["addresses"].append({
                        "id": address_id, "customer_id": cid,
                        "line1": f"{self.rng.randint(1, 140)} {self.rng.choice(STREETS)}", "line2": None,
                        "town": town, "postcode": self.normalise_postcode(raw),
                        "postcode_key": self.postcode_key(raw), "uprn": str(100_000_000_000 + address_id),
                        "created_at": created,
                    })
            yield rows

    # --- contacts, cases and case events ---------------------------------------------------

    def _customer_for_contact(self) -> int:
        if self.heavy_ids and self.rng.random() < self.heavy_share:
            return self.rng.choice(self.heavy_ids)
        # Skewed: a long tail of customers with one or two contacts, some with dozens.
        return int(self.n_customers * self.rng.random() ** 1.5) + 1

    def contact_batches(self, batch: int):
        """Yield rows per table for the contacts, in time order (ids rise with time, as in life)."""
        rows = {"cases": [], "case_events": [], "contacts": []}
        contact_id = 0
        for day in range(HISTORY_DAYS):
            quota = self.n_contacts * (day + 1) // HISTORY_DAYS - self.n_contacts * day // HISTORY_DAYS
            day_start = self.start + timedelta(days=day, hours=8)
            times = sorted(day_start + timedelta(seconds=self.rng.uniform(0, 12 * 3600)) for _ in range(quota))
            for occurred in times:
                contact_id += 1
                rows["contacts"].append(self._contact(contact_id, occurred, rows))
                if len(rows["contacts"]) >= batch:
                    yield rows
                    rows = {"cases": [], "case_events": [], "contacts": []}
        if rows["contacts"]:
            yield rows

    def _contact(self, contact_id: int, occurred: datetime, rows: dict) -> dict:
        rng = self.rng
        customer_id = self._customer_for_contact()
        channel = self._pick(self.channels, self.channel_cum)
        category_code, category_name, service_id = rng.choice(self.categories)
        outcome = self._pick(self.outcomes, self.outcome_cum)
        handled = channel in HANDLED_CHANNELS
        ended = occurred + timedelta(seconds=rng.randint(45, 1200)) if handled else None
        direction = "outbound" if channel in ("phone", "email", "letter") and rng.random() < 0.1 else "inbound"
        notes = rng.choice(self.notes)
        case_id = None
        if outcome == "case_raised":
            case_id = self._case(customer_id, contact_id, channel, occurred, category_code, category_name,
                                 service_id, notes, rows)
        return {
            "id": contact_id, "customer_id": customer_id, "channel": channel, "direction": direction,
            "occurred_at": occurred, "started_at": occurred if handled else None, "ended_at": ended,
            "agent_id": rng.choice(self.agent_ids) if handled else None, "category": category_code,
            "summary": category_name[:300], "notes": notes, "outcome": outcome, "conversation_id": None,
            "case_id": case_id, "created_at": ended or occurred,
        }

    def _case(self, customer_id, contact_id, channel, opened, category_code, category_name, service_id,
              notes, rows) -> int:
        rng = self.rng
        case_id = self.next_case_id
        self.next_case_id += 1
        service_name, sla_hours, queue_id = self.services[service_id]
        sla_due = opened + timedelta(hours=sla_hours)
        resolved = opened + timedelta(hours=rng.uniform(2, sla_hours * 1.6))
        closed = resolved + timedelta(days=7)
        status, resolved_at, closed_at = "open", None, None
        if closed <= self.end:
            status, resolved_at, closed_at = "closed", resolved, closed
        elif resolved <= self.end:
            status, resolved_at = "resolved", resolved
        elif rng.random() < 0.3:
            status = "new"
        breached = (resolved_at or self.end) > sla_due
        rows["cases"].append({
            "id": case_id, "reference": self.reference_for(case_id), "customer_id": customer_id,
            "service_id": service_id, "queue_id": queue_id, "category": category_code,
            "title": category_name[:200], "description": notes, "status": status,
            "priority": self._pick(self.priorities, self.priority_cum), "source_channel": channel,
            "assignee_id": None, "raised_by_contact_id": contact_id, "location_address": None,
            "latitude": None, "longitude": None, "merged_into_id": None, "sla_due_at": sla_due,
            "first_response_due_at": None, "first_responded_at": None, "sla_breached": breached,
            "resolved_at": resolved_at, "closed_at": closed_at, "created_at": opened,
            "updated_at": closed_at or resolved_at or opened,
        })
        events = [("created", None, "new", notes, False, opened), ("routed", None, service_name, None, False, opened)]
        if resolved_at:
            events += [("status_changed", "new", "resolved", None, False, resolved_at),
                       ("public_update", None, None, "This has now been dealt with. Thank you for reporting it.",
                        True, resolved_at)]
        if closed_at:
            events.append(("status_changed", "resolved", "closed", None, False, closed_at))
        for kind, from_value, to_value, body, public, at in events:
            rows["case_events"].append({
                "id": self.next_event_id, "case_id": case_id, "customer_id": customer_id, "kind": kind,
                "actor_id": None, "from_value": from_value, "to_value": to_value, "body": body,
                "public": public, "occurred_at": at,
            })
            self.next_event_id += 1
        self.cases += 1
        self.case_events += len(events)
        return case_id


class Writer:
    """Bulk-insert rows: SQLAlchemy Core executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, engine, metadata):
        self.engine = engine
        self.tables = metadata.tables
        self.postgresql = engine.dialect.name == "postgresql"

    def write(self, rows_by_table: dict) -> None:
        with self.engine.begin() as conn:
            for name, rows in rows_by_table.items():
                if rows:
                    self._fill_defaults(self.tables[name], rows)
                    if self.postgresql:
                        self._copy(conn, self.tables[name], rows)
                    else:
                        conn.execute(self.tables[name].insert(), rows)

    @staticmethod
    def _fill_defaults(table, rows) -> None:
        """Give columns the generator does not know (added by later work) their scalar default."""
        missing = [c for c in table.columns if c.name not in rows[0]]
        for column in missing:
            default = column.default
            value = default.arg if default is not None and default.is_scalar else None
            if value is None and not column.nullable and not column.primary_key:
                raise RuntimeError(f"{table.name}.{column.name} is NOT NULL without a scalar default: "
                                   "teach bench/datagen.py to fill it")
            for row in rows:
                row[column.name] = value

    @staticmethod
    def _copy(conn, table, rows) -> None:
        from crm.models import UTCDateTime

        columns = [c.name for c in table.columns]
        # COPY bypasses the column types, so store what UTCDateTime would: naive UTC.
        naive = {i for i, c in enumerate(table.columns) if isinstance(c.type, UTCDateTime)}
        quoted = ", ".join(f'"{c}"' for c in columns)
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
            for row in rows:
                values = [row.get(c) for c in columns]
                for i in naive:
                    if values[i] is not None:
                        values[i] = values[i].astimezone(timezone.utc).replace(tzinfo=None)
                copy.write_row(values)


def _read_manifest(engine) -> Optional[dict]:
    if MANIFEST_TABLE not in inspect(engine).get_table_names():
        return None
    with engine.connect() as conn:
        rows = dict(conn.execute(text(f"SELECT key, value FROM {MANIFEST_TABLE}")).all())
    return json.loads(rows["build"]) if "build" in rows else None


BENCH_TABLES = ("customers", "customer_name_terms", "customer_identities", "addresses", "contacts",
                "cases", "case_events", "services", "categories", "queues", "users")


def schema_drift(engine) -> list:
    """Return how the generated tables differ from the models (e.g. an index added since the build)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from crm.extensions import db

    def ours(obj, name, type_, reflected, compare_to):
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is not None and table.name in BENCH_TABLES

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": ours})
        diffs = compare_metadata(context, db.metadata)
        diffs += _partial_index_drift(conn, engine.dialect.name)
    # SQLite reports some types loosely; columns, indexes and constraints are what matter here.
    return [d for d in diffs if not (isinstance(d, list) or (isinstance(d, tuple) and d[0] == "modify_type"))]


def _partial_index_drift(conn, dialect: str) -> list:
    """Return indexes that are partial in the models but not in the database, or the reverse
    (Alembic's comparison does not look at an index's WHERE clause)."""
    from crm.extensions import db

    option = f"{dialect}_where"
    inspector = inspect(conn)
    drift = []
    for name in BENCH_TABLES:
        reflected = {ix["name"]: ix.get("dialect_options", {}).get(option) is not None
                     for ix in inspector.get_indexes(name)}
        for index in db.metadata.tables[name].indexes:
            wanted = index.dialect_options[dialect]["where"] is not None
            if index.name in reflected and reflected[index.name] != wanted:
                drift.append(("partial_index", name, index.name))
    return drift


def _write_manifest(engine, info: BuildInfo) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {MANIFEST_TABLE} (key VARCHAR(40) PRIMARY KEY, value TEXT NOT NULL)"))
        payload = {k: v for k, v in asdict(info).items() if k not in ("url", "reused")}
        conn.execute(text(f"INSERT INTO {MANIFEST_TABLE} (key, value) VALUES ('build', :v)"),
                     {"v": json.dumps(payload)})


def _wipe(url: str, schema: Optional[str]) -> None:
    """Empty the target: delete the SQLite file, or drop and recreate the PostgreSQL schema."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        for suffix in ("", "-wal", "-shm", "-journal"):
            if path and os.path.exists(path + suffix):
                os.remove(path + suffix)
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        name = schema or "public"
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    engine.dispose()


def _ensure_schema(url: str, schema: Optional[str]) -> None:
    if schema and url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        engine.dispose()


def _fast_build_engine(url: str):
    """An engine for loading: on SQLite, skip fsync and keep a large page cache."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA journal_mode=MEMORY")
            cursor.execute("PRAGMA cache_size=-524288")  # 512 MiB
            cursor.close()
    return engine


def _migrate(url: str) -> None:
    """Build the schema the way a deployment does: `flask db upgrade`."""
    from flask_migrate import upgrade

    from crm import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        from crm.extensions import db

        db.engine.dispose()


def _reference_data(url: str, agents: int) -> dict:
    """Insert the demo's services (with categories and queues) and bench agents; return ids rows need.

    Only the tables contacts and cases point at, so a build does not depend on the rest of the demo.
    """
    from crm.demo import SERVICES
    from crm.models import Category, Queue, Service, User, utcnow

    now = utcnow()
    engine = create_engine(url)
    services, categories = {}, []
    with engine.begin() as conn:
        for code, name, sla_hours, sensitive, service_categories in SERVICES:
            service_id = conn.execute(Service.__table__.insert().values(
                code=code, name=name, sla_hours=sla_hours, sensitive=sensitive, active=True,
                email_address=f"{code.replace('_', '-')}@council.example")).inserted_primary_key[0]
            queue_id = conn.execute(Queue.__table__.insert().values(
                code=f"{code}_cases", name=f"{name} cases", channel="cases", service_id=service_id,
                target_response_minutes=24 * 60)).inserted_primary_key[0]
            conn.execute(Queue.__table__.insert().values(
                code=f"{code}_email", name=f"{name} email", channel="email", service_id=service_id,
                target_response_minutes=24 * 60))
            conn.execute(Category.__table__.insert(), [
                {"service_id": service_id, "code": cat_code, "name": cat_name, "active": True}
                for cat_code, cat_name in service_categories])
            services[service_id] = (name, sla_hours, queue_id)
            categories += [(cat_code, cat_name, service_id) for cat_code, cat_name in service_categories]
        conn.execute(User.__table__.insert(), [
            {"email": f"bench.agent{n}@council.example", "name": f"Bench Agent {n}", "role": "agent",
             "password_hash": None, "active": True, "service_id": None, "chat_capacity": 3,
             "failed_logins": 0, "locked_until": None, "last_login_at": None, "created_at": now}
            for n in range(1, agents + 1)])
        agent_ids = list(conn.scalars(select(User.id).where(User.role == "agent").order_by(User.id)))
    engine.dispose()
    return {"services": services, "categories": categories, "agent_ids": agent_ids}


def _finish(engine, progress: bool) -> None:
    """Move PostgreSQL sequences past the generated ids and gather planner statistics."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for table in ("customers", "customer_identities", "addresses", "contacts", "cases", "case_events", "users"):
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"))
    log("vacuum analyze (what autovacuum would do on a live system)", progress)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def build(url: str, customers: int, contacts: int, seed: int = 2026, progress: bool = True, *,
          schema: Optional[str] = None, heavy_customers: int = 5, heavy_contacts: int = 5000,
          case_rate: float = 0.08, agents: int = 60, force: bool = False,
          batch_rows: int = BATCH_ROWS) -> BuildInfo:
    """Build (or reuse) a benchmark database at `url`; return what it holds.

    `schema` (PostgreSQL only) keeps builds of different sizes side by side in one database;
    connect later with `with_search_path(url, schema)`. `heavy_customers` customers get about
    `heavy_contacts` contacts each (deep timelines); `case_rate` of contacts raise a case.
    """
    url = absolute_sqlite_url(url)
    wanted = BuildInfo(url=url, customers=customers, contacts=contacts, seed=seed,
                       heavy_customers=heavy_customers, heavy_contacts=heavy_contacts, case_rate=case_rate)
    _ensure_schema(url, schema)
    target = with_search_path(url, schema)
    import crm.models  # noqa: F401  (the metadata schema_drift compares with)

    probe = create_engine(target)
    try:
        existing = _read_manifest(probe)
        has_tables = bool(inspect(probe).get_table_names())
        drift = schema_drift(probe) if existing is not None else []
    finally:
        probe.dispose()
    if existing is not None:
        found = BuildInfo(url=url, **{k: v for k, v in existing.items() if k in BuildInfo.__dataclass_fields__})
        if drift:
            log(f"rebuilding: the schema has changed since the last build ({len(drift)} differences)", progress)
        elif found.matches(wanted):
            found.reused = True
            log(f"reusing {customers:,} customers / {contacts:,} contacts at {make_url(url).render_as_string()}"
                f"{' schema ' + schema if schema else ''}", progress)
            return found
    elif has_tables and not force:
        raise RuntimeError(f"{make_url(url).render_as_string()} has tables but no {MANIFEST_TABLE}: "
                           "not a benchmark database; pass force=True (--force) to replace it")

    started = time.perf_counter()
    log(f"building {customers:,} customers / {contacts:,} contacts (seed {seed}) at "
        f"{make_url(url).render_as_string()}{' schema ' + schema if schema else ''}", progress)
    _wipe(url, schema)
    _migrate(target)
    reference = _reference_data(target, agents)
    end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    generator = Generator(customers, contacts, seed, heavy_customers, heavy_contacts, case_rate, end, reference)

    from crm.extensions import db

    engine = _fast_build_engine(target)
    writer = Writer(engine, db.metadata)
    try:
        bar = Progress("customers", customers, progress)
        per_batch = max(1, batch_rows // 4)
        for rows in generator.customer_batches(per_batch):
            writer.write(rows)
            bar.advance(len(rows["customers"]))
        bar.close()
        bar = Progress("contacts + cases", contacts, progress)
        for rows in generator.contact_batches(batch_rows):
            writer.write(rows)
            bar.advance(len(rows["contacts"]))
        bar.close()
        _finish(engine, progress)
        info = BuildInfo(
            url=url, customers=customers, contacts=contacts, seed=seed, heavy_customers=heavy_customers,
            heavy_contacts=heavy_contacts, case_rate=case_rate, cases=generator.cases,
            case_events=generator.case_events, heavy_customer_ids=generator.heavy_ids,
            period_start=generator.start.isoformat(), period_end=end.isoformat(),
            build_seconds=round(time.perf_counter() - started, 1))
        _write_manifest(engine, info)
    finally:
        engine.dispose()
    log(f"built in {info.build_seconds:.0f}s: {info.cases:,} cases, {info.case_events:,} case events", progress)
    return info


def quiet_warnings() -> None:
    """Hide the eventlet deprecation notice the app's imports print; it is not ours to fix here."""
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


def main(argv=None) -> int:
    quiet_warnings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="SQLAlchemy URL (sqlite:///path or postgresql+psycopg://...)")
    parser.add_argument("--schema", help="PostgreSQL schema to build in (default: public)")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--contacts", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--heavy-customers", type=int, default=5)
    parser.add_argument("--heavy-contacts", type=int, default=5000)
    parser.add_argument("--case-rate", type=float, default=0.08)
    parser.add_argument("--force", action="store_true", help="replace a database that is not a benchmark build")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if not 0 <= args.case_rate <= 1 or args.customers < 1 or args.contacts < 0:
        parser.error("sizes must be positive and --case-rate between 0 and 1")
    try:
        info = build(args.url, args.customers, args.contacts, args.seed, progress=not args.quiet,
                     schema=args.schema, heavy_customers=args.heavy_customers,
                     heavy_contacts=args.heavy_contacts, case_rate=args.case_rate, force=args.force)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    payload = asdict(info)
    payload["url"] = make_url(info.url).render_as_string()
    print(json.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
