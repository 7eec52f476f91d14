"""One bank-holiday lookup for the whole product: case SLAs and webchat hours read the same calendar."""
from datetime import date

from crm import bank_holidays


def test_each_part_of_the_uk_has_its_own_bank_holidays():
    assert bank_holidays.is_bank_holiday(date(2027, 3, 17), "NIR")      # St Patrick's Day
    assert not bank_holidays.is_bank_holiday(date(2027, 3, 17), "ENG")
    assert bank_holidays.is_bank_holiday(date(2026, 8, 3), "SCT")       # Scotland's summer holiday is early August
    assert bank_holidays.is_bank_holiday(date(2026, 8, 31), "ENG")      # England's is the last Monday


def test_a_year_is_built_once_and_then_looked_up():
    bank_holidays.holidays_in.cache_clear()
    for day in (date(2028, 1, 3), date(2028, 4, 14), date(2028, 12, 25)):
        assert bank_holidays.is_bank_holiday(day, "ENG")
    assert bank_holidays.holidays_in.cache_info().misses == 1
