"""UK bank holidays, from the `holidays` package (never a typed list): one lookup for case SLAs and webchat hours."""
from datetime import date
from functools import lru_cache

import holidays

from config import SettingError

PARTS_OF_THE_UK = ("ENG", "NIR", "SCT", "WLS")  # the `holidays` package's subdivisions of GB


def check_part_of_the_uk(name: str, value, may_be_empty: bool = False) -> None:
    """Refuse a setting that names no part of the UK (empty allowed where it means "the default")."""
    if value in PARTS_OF_THE_UK or (may_be_empty and not value):
        return
    raise SettingError(f"{name}={value!r}: expected one of {', '.join(PARTS_OF_THE_UK)}"
                       + (" or nothing" if may_be_empty else ""))


@lru_cache(maxsize=32)
def holidays_in(subdivision: str, year: int) -> frozenset:
    """Return the bank holidays of one year in a part of the UK (ENG, SCT, WLS, NIR)."""
    # Building the calendar costs milliseconds: once per year and part of the UK, not per look-up.
    return frozenset(holidays.country_holidays("GB", subdiv=subdivision, years=[year]).keys())


def is_bank_holiday(day: date, subdivision: str) -> bool:
    """Say whether the day is a bank holiday in that part of the UK."""
    return day in holidays_in(subdivision, day.year)
