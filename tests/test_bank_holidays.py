"""One bank-holiday lookup for the whole product: case SLAs and webchat hours read the same calendar."""
from datetime import date

import pytest

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


def test_a_setting_naming_a_part_of_the_uk_is_taken():
    for part in bank_holidays.PARTS_OF_THE_UK:
        bank_holidays.check_part_of_the_uk("ANY_SUBDIVISION", part)
    bank_holidays.check_part_of_the_uk("ANY_SUBDIVISION", "", may_be_empty=True)


@pytest.mark.parametrize("value, may_be_empty, said", [
    ("Yorkshire", False, "ANY_SUBDIVISION='Yorkshire': expected one of ENG, NIR, SCT, WLS"),
    ("", False, "ANY_SUBDIVISION='': expected one of ENG, NIR, SCT, WLS"),
    ("eng", True, "ANY_SUBDIVISION='eng': expected one of ENG, NIR, SCT, WLS or nothing"),
])
def test_a_setting_naming_no_part_of_the_uk_is_refused_naming_the_variable(value, may_be_empty, said):
    with pytest.raises(ValueError, match=said):
        bank_holidays.check_part_of_the_uk("ANY_SUBDIVISION", value, may_be_empty=may_be_empty)
