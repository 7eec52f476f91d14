"""Opening hours with bank holidays (the `holidays` package), read in the council's time zone."""
from datetime import datetime, time, timezone

from crm.extensions import db
from crm.models import OpeningHours
from crm.webchat import hours


def weekdays_nine_to_five():
    db.session.add_all([OpeningHours(weekday=d, opens=time(9), closes=time(17)) for d in range(5)])
    db.session.commit()


def test_with_no_hours_configured_webchat_is_always_open(app):
    assert hours.is_open(datetime(2026, 12, 25, 3, 0, tzinfo=timezone.utc))
    assert hours.next_opening() is None


def test_open_on_a_weekday_closed_at_night_weekends_and_bank_holidays(app):
    weekdays_nine_to_five()
    assert hours.is_open(datetime(2026, 12, 23, 10, 0, tzinfo=timezone.utc))  # Wednesday
    assert not hours.is_open(datetime(2026, 12, 23, 18, 30, tzinfo=timezone.utc))
    assert not hours.is_open(datetime(2026, 12, 26, 10, 0, tzinfo=timezone.utc))  # Saturday
    assert not hours.is_open(datetime(2026, 12, 25, 10, 0, tzinfo=timezone.utc))  # Christmas Day
    assert not hours.is_open(datetime(2026, 8, 31, 10, 0, tzinfo=timezone.utc))  # summer bank holiday
    # British Summer Time: 08:30 UTC is 09:30 in London.
    assert hours.is_open(datetime(2026, 7, 1, 8, 30, tzinfo=timezone.utc))


def test_next_opening_skips_the_christmas_bank_holidays(app):
    weekdays_nine_to_five()
    opens = hours.next_opening(datetime(2026, 12, 24, 18, 0, tzinfo=timezone.utc))
    assert opens.isoformat() == "2026-12-29T09:00:00+00:00"  # 25th, weekend and Boxing Day substitute skipped
