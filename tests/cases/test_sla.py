"""SLA targets in working hours: weekends and England's bank holidays (from the holidays package) skipped."""
from datetime import datetime, timedelta, timezone

import pytest

from crm.cases.sla import WorkingCalendar, targets
from crm.models import Case
from tests import factories

UTC = timezone.utc


@pytest.fixture
def calendar(app):
    return WorkingCalendar("Europe/London", 9, 17)


def test_a_friday_afternoon_case_runs_over_the_weekend(calendar):
    friday_4pm = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # GMT: UTC is local time
    assert calendar.add_working_hours(friday_4pm, 8) == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


def test_christmas_and_the_observed_boxing_day_are_skipped(calendar):
    christmas_eve_3pm = datetime(2026, 12, 24, 15, 0, tzinfo=UTC)
    # 2 h on the 24th; 25th bank holiday, weekend, 28th Boxing Day (substitute); 8 h on the 29th; 6 h on the 30th.
    assert calendar.add_working_hours(christmas_eve_3pm, 16) == datetime(2026, 12, 30, 15, 0, tzinfo=UTC)


def test_easter_in_summer_time_skips_good_friday_and_easter_monday(calendar):
    maundy_thursday_4pm_bst = datetime(2026, 4, 2, 15, 0, tzinfo=UTC)
    # 1 h to 17:00 BST, then Tuesday 7 April from 09:00 BST (08:00 UTC).
    assert calendar.add_working_hours(maundy_thursday_4pm_bst, 2) == datetime(2026, 4, 7, 9, 0, tzinfo=UTC)


def test_a_case_raised_at_the_weekend_starts_on_monday_morning(calendar):
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert calendar.add_working_hours(saturday, 3) == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_a_case_raised_before_opening_starts_at_opening(calendar):
    early = datetime(2026, 11, 24, 6, 30, tzinfo=UTC)
    assert calendar.add_working_hours(early, 1) == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_working_hours_between_counts_office_time_only(calendar):
    friday_4pm = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    tuesday_10am = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert calendar.working_hours_between(friday_4pm, tuesday_10am) == 1 + 8 + 1
    assert calendar.working_hours_between(tuesday_10am, friday_4pm) == -10


def test_bank_holidays_come_from_the_calendar_library(app):
    is_bank_holiday = WorkingCalendar.from_config().is_bank_holiday  # England's, by default
    assert is_bank_holiday(datetime(2027, 5, 31).date())      # Spring bank holiday 2027
    assert not is_bank_holiday(datetime(2027, 3, 17).date())  # St Patrick's Day: Northern Ireland only
    assert not is_bank_holiday(datetime(2027, 1, 4).date())   # 2 January is Scotland's, not England's


def test_a_calendar_follows_the_bank_holidays_of_its_part_of_the_uk():
    new_year_eve_4pm = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    # England: 1 h on the 31st, closed on New Year's Day, weekend; Monday 4 January from 09:00.
    assert WorkingCalendar("Europe/London", 9, 17).add_working_hours(new_year_eve_4pm, 2) == \
        datetime(2027, 1, 4, 10, 0, tzinfo=UTC)
    # Scotland also closes on Monday 4 January (2 January, a Saturday, moves to the Monday).
    assert WorkingCalendar("Europe/London", 9, 17, "SCT").add_working_hours(new_year_eve_4pm, 2) == \
        datetime(2027, 1, 5, 10, 0, tzinfo=UTC)


def test_first_response_target_is_the_shorter_of_its_setting_and_the_resolution(app):
    raised = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    first, resolution = targets(raised, 4)
    assert first == resolution == datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    first, resolution = targets(raised, 40)
    assert first == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    assert resolution == datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


def test_a_new_case_stores_both_targets_from_its_routing_rule(app, db):
    factories.service(sla_hours=24)
    case = factories.case(factories.customer())
    calendar = WorkingCalendar.from_config()
    assert case.sla_hours == 24
    assert case.sla_due_at == calendar.add_working_hours(case.created_at, 24)
    assert case.first_response_due_at == calendar.add_working_hours(case.created_at, 8)
    stored = db.session.get(Case, case.id)
    db.session.expire(stored)
    assert stored.sla_due_at.tzinfo is not None
    assert abs(stored.sla_due_at - case.sla_due_at) < timedelta(seconds=1)


def test_office_hours_are_settings(app):
    app.config.update(CASE_WORKDAY_START=8, CASE_WORKDAY_END=18)
    try:
        calendar = WorkingCalendar.from_config()
        assert calendar.add_working_hours(datetime(2026, 11, 23, 8, 0, tzinfo=UTC), 10) == datetime(
            2026, 11, 23, 18, 0, tzinfo=UTC)
    finally:
        app.config.pop("CASE_WORKDAY_START")
        app.config.pop("CASE_WORKDAY_END")
