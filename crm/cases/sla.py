"""SLA targets in working hours: Monday to Friday office hours, the bank holidays of the council's part of the UK excluded.

Bank holidays come from the `holidays` package (GB, CASE_HOLIDAY_SUBDIVISION: ENG, SCT, WLS or NIR), never a
typed list. The office day and the targets are settings, read from the environment when the app's config
lacks them, so a council with other hours changes its environment only: CASE_WORKDAY_START /
CASE_WORKDAY_END (hour, local time), CASE_TIMEZONE, CASE_FIRST_RESPONSE_HOURS (working hours to the first
public update) and CASE_SLA_AT_RISK_HOURS (working hours left when a case counts as at risk).
"""
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import current_app

from config import SettingError, check_time_zone, fill_from_environment

from .. import bank_holidays

DEFAULTS = {
    "CASE_TIMEZONE": "Europe/London",
    "CASE_WORKDAY_START": 9,
    "CASE_WORKDAY_END": 17,
    "CASE_FIRST_RESPONSE_HOURS": 8.0,
    "CASE_SLA_AT_RISK_HOURS": 8.0,
    "CASE_HOLIDAY_SUBDIVISION": "ENG",
}


def setting(name: str):
    """Read an SLA setting from the app config, falling back to the defaults above."""
    return current_app.config.get(name, DEFAULTS[name])


def init_app(app) -> None:
    """Take the SLA settings the app config lacks from the environment, and refuse a calendar that cannot work."""
    fill_from_environment(app.config, DEFAULTS)
    config = app.config
    bank_holidays.check_part_of_the_uk("CASE_HOLIDAY_SUBDIVISION", config["CASE_HOLIDAY_SUBDIVISION"])
    check_time_zone("CASE_TIMEZONE", config["CASE_TIMEZONE"])
    if not 0 <= int(config["CASE_WORKDAY_START"]) < int(config["CASE_WORKDAY_END"]) <= 24:
        raise SettingError(f"CASE_WORKDAY_START={config['CASE_WORKDAY_START']} and CASE_WORKDAY_END="
                         f"{config['CASE_WORKDAY_END']}: the working day must start before it ends, within 0-24")
    if float(config["CASE_FIRST_RESPONSE_HOURS"]) <= 0 or float(config["CASE_SLA_AT_RISK_HOURS"]) < 0:
        raise SettingError("CASE_FIRST_RESPONSE_HOURS must be above 0 and CASE_SLA_AT_RISK_HOURS at least 0")


class WorkingCalendar:
    """Office hours in a time zone, bank holidays of one part of the UK closed; adds working hours to an instant."""

    def __init__(self, tz: str, start_hour: int, end_hour: int, subdivision: str = DEFAULTS["CASE_HOLIDAY_SUBDIVISION"]):
        if not 0 <= start_hour < end_hour <= 24:
            raise ValueError("the working day must start before it ends")
        self.tz = ZoneInfo(tz)
        self.start = time(start_hour)
        self.end_hour = end_hour
        self.subdivision = subdivision

    @classmethod
    def from_config(cls) -> "WorkingCalendar":
        """Build the calendar from the app's settings."""
        return cls(setting("CASE_TIMEZONE"), int(setting("CASE_WORKDAY_START")),
                   int(setting("CASE_WORKDAY_END")), setting("CASE_HOLIDAY_SUBDIVISION"))

    def is_bank_holiday(self, day: date) -> bool:
        """Say whether the day is a bank holiday in the calendar's part of the UK."""
        return bank_holidays.is_bank_holiday(day, self.subdivision)

    def is_working_day(self, day: date) -> bool:
        """Say whether the office is open on this day (a weekday that is not a bank holiday)."""
        return day.weekday() < 5 and not self.is_bank_holiday(day)

    def _day_bounds(self, day: date) -> tuple[datetime, datetime]:
        # Built from local wall time, so a clock-change day keeps its office hours.
        opens = datetime.combine(day, self.start, self.tz)
        if self.end_hour == 24:
            return opens, datetime.combine(day + timedelta(days=1), time(0), self.tz)
        return opens, datetime.combine(day, time(self.end_hour), self.tz)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """Return the instant `hours` of office time after `start` (aware UTC in and out)."""
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        remaining = timedelta(hours=hours)
        local = start.astimezone(self.tz)
        day = local.date()
        cursor = local
        while True:
            if self.is_working_day(day):
                opens, closes = self._day_bounds(day)
                begin = max(cursor, opens)
                if begin < closes:
                    available = closes - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(timezone.utc)
                    remaining -= available
            day += timedelta(days=1)
            cursor = datetime.combine(day, time(0), self.tz)

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Return the office hours from `start` to `end` (negative when end is earlier)."""
        if end < start:
            return -self.working_hours_between(end, start)
        total = timedelta(0)
        local_start, local_end = start.astimezone(self.tz), end.astimezone(self.tz)
        day = local_start.date()
        while day <= local_end.date():
            if self.is_working_day(day):
                opens, closes = self._day_bounds(day)
                begin, finish = max(opens, local_start), min(closes, local_end)
                if finish > begin:
                    total += finish - begin
            day += timedelta(days=1)
        return total.total_seconds() / 3600


def targets(raised_at: datetime, resolution_hours: int) -> tuple[datetime, datetime]:
    """Return (first response due, resolution due) for a case raised at `raised_at`."""
    calendar = WorkingCalendar.from_config()
    first_hours = min(float(setting("CASE_FIRST_RESPONSE_HOURS")), float(resolution_hours))
    return (calendar.add_working_hours(raised_at, first_hours),
            calendar.add_working_hours(raised_at, resolution_hours))


def at_risk_threshold(now: datetime) -> datetime:
    """Return the instant before which a due time counts as at risk (margin of working hours)."""
    return WorkingCalendar.from_config().add_working_hours(now, float(setting("CASE_SLA_AT_RISK_HOURS")))
