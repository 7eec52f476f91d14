"""The daily contact totals stay equal to the contacts they count, whatever is written."""
import random
from datetime import timedelta

from sqlalchemy import delete, select

from crm.extensions import db
from crm.models import CHANNELS, OUTCOMES, Contact, ContactDailyTotal
from crm.supervisor import reports
from crm.supervisor.reports import ReportFilters
from crm.supervisor.rollup import rebuild_totals
from tests import factories

from .conftest import NOW


def _totals():
    return sorted(
        (r.day, r.channel, r.direction, r.outcome, r.category, r.contacts, r.handled, r.handle_seconds)
        for r in db.session.scalars(select(ContactDailyTotal)) if r.contacts)


def _random_contact(rng, customer):
    occurred = NOW - timedelta(days=rng.randint(0, 60), minutes=rng.randint(0, 24 * 60))
    handled = rng.random() < 0.6
    return Contact(customer_id=customer.id, channel=rng.choice(CHANNELS), summary="x",
                   direction=rng.choice(("inbound", "inbound", "outbound")), outcome=rng.choice(OUTCOMES),
                   category=rng.choice(("pothole", "missed_bin", None)), occurred_at=occurred,
                   started_at=occurred if handled else None,
                   ended_at=occurred + timedelta(seconds=rng.randint(30, 900)) if handled else None)


def test_totals_follow_inserts_changes_and_deletes(app):
    rng = random.Random(6)
    customer = factories.customer()
    contacts = [_random_contact(rng, customer) for _ in range(120)]
    db.session.add_all(contacts)
    db.session.commit()
    for contact in rng.sample(contacts, 40):  # outcomes settle, categories get corrected, calls end
        contact.outcome = rng.choice(OUTCOMES)
        contact.category = rng.choice(("pothole", "fly_tipping"))
        contact.occurred_at = contact.occurred_at - timedelta(hours=rng.randint(0, 30))
        if contact.started_at:
            contact.ended_at = contact.started_at + timedelta(seconds=rng.randint(30, 900))
    db.session.commit()
    for contact in rng.sample(contacts, 15):
        db.session.delete(contact)
    db.session.commit()
    kept = _totals()
    db.session.execute(delete(ContactDailyTotal))
    rebuild_totals()
    db.session.commit()
    assert _totals() == kept
    assert sum(row[5] for row in kept) == 105


def test_rollup_and_contacts_give_the_same_report(app):
    rng = random.Random(9)
    customer = factories.customer()
    db.session.add_all([_random_contact(rng, customer) for _ in range(200)])
    db.session.commit()
    for start in (NOW.date() - timedelta(days=60), NOW.date() - timedelta(days=6)):
        filters = ReportFilters(start, NOW.date())
        for unit in ("day", "month"):
            boundaries = reports.bucket_boundaries(filters, unit)
            raw = reports._groups_from_contacts(filters, boundaries)
            rolled = reports._groups_from_totals(filters, boundaries, unit)
            assert sorted(raw.per_period) == sorted(rolled.per_period) and rolled.per_period
            assert sorted((ch, out, cat or "", n, h, int(sec)) for ch, out, cat, n, h, sec in raw.per_kind) == \
                sorted((ch, out, cat or "", n, h, sec) for ch, out, cat, n, h, sec in rolled.per_kind)


def test_rebuild_command(app, runner):
    customer = factories.customer()
    db.session.add(Contact(customer_id=customer.id, channel="phone", summary="x", occurred_at=NOW))
    db.session.commit()
    db.session.execute(delete(ContactDailyTotal))
    db.session.commit()
    result = runner.invoke(args=["crm", "rebuild-report-totals"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "rebuilt 1 daily totals"
    assert db.session.scalar(select(ContactDailyTotal.contacts)) == 1
    bad = runner.invoke(args=["crm", "rebuild-report-totals", "--from", "tuesday"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output and "Traceback" not in bad.output
