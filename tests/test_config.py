"""Configuration: secrets, and every setting the README names can be set in the environment or is refused clearly.

The public development key never runs a production app; an installation makes its own once.
"""
import os
import stat
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from config import DEV_SECRET_KEY, _bool, check_time_zone, fill_from_environment, instance_secret_key
from crm import create_app
from crm.cases.sla import WorkingCalendar
from crm.webchat import hours

ROOT = Path(__file__).resolve().parent.parent
TEST_APP = {"SECRET_KEY": "test", "TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"}
ST_ANDREWS_DAY = date(2026, 11, 30)  # a Monday: a bank holiday in Scotland only


def test_the_app_refuses_to_start_in_production_with_the_development_key():
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"SECRET_KEY": DEV_SECRET_KEY, "TESTING": False, "DEBUG": False,
                    "SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_debug_and_tests_may_use_the_development_key():
    assert create_app({"SECRET_KEY": DEV_SECRET_KEY, "DEBUG": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert create_app({"SECRET_KEY": DEV_SECRET_KEY, "TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_the_instance_key_is_random_private_and_made_only_once(tmp_path):
    first = instance_secret_key(tmp_path / "instance" / "secret_key")
    again = instance_secret_key(tmp_path / "instance" / "secret_key")
    other = instance_secret_key(tmp_path / "elsewhere" / "secret_key")
    assert first == again and len(first) >= 48 and first != other and first != DEV_SECRET_KEY
    assert stat.S_IMODE((tmp_path / "instance" / "secret_key").stat().st_mode) == 0o600


def test_the_areas_settings_are_read_from_the_environment_as_their_types(monkeypatch):
    environment = {
        "CASE_TIMEZONE": "Europe/Belfast", "CASE_WORKDAY_START": "8", "CASE_WORKDAY_END": "18",
        "CASE_FIRST_RESPONSE_HOURS": "4.5", "CASE_SLA_AT_RISK_HOURS": "2", "CASE_HOLIDAY_SUBDIVISION": "NIR",
        "CASE_REOPEN_DAYS": "28", "PORTAL_MAX_PHOTO_BYTES": "2000000", "PORTAL_TRACK_LIMIT": "3 per minute",
        "OPEN311_JURISDICTION": "council.example.gov.uk", "SUPERVISOR_REFRESH_SECONDS": "5",
        "WEBCHAT_NO_AGENT_SECONDS": "120",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    config = create_app(TEST_APP).config
    assert (config["CASE_TIMEZONE"], config["CASE_WORKDAY_START"], config["CASE_WORKDAY_END"]) == ("Europe/Belfast", 8, 18)
    assert (config["CASE_FIRST_RESPONSE_HOURS"], config["CASE_SLA_AT_RISK_HOURS"]) == (4.5, 2.0)
    assert (config["CASE_HOLIDAY_SUBDIVISION"], config["CASE_REOPEN_DAYS"]) == ("NIR", 28)
    assert (config["PORTAL_MAX_PHOTO_BYTES"], config["PORTAL_TRACK_LIMIT"]) == (2_000_000, "3 per minute")
    assert config["OPEN311_JURISDICTION"] == "council.example.gov.uk"
    assert (config["SUPERVISOR_REFRESH_SECONDS"], config["WEBCHAT_NO_AGENT_SECONDS"]) == (5.0, 120)


def test_settings_given_to_the_app_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("CASE_WORKDAY_START", "7")
    assert create_app({**TEST_APP, "CASE_WORKDAY_START": 10}).config["CASE_WORKDAY_START"] == 10


@pytest.mark.parametrize("name, value, said", [
    ("CASE_WORKDAY_START", "nine", "CASE_WORKDAY_START='nine': expected a whole number"),
    ("CASE_WORKDAY_END", "8", "the working day must start before it ends"),
    ("CASE_FIRST_RESPONSE_HOURS", "soon", "CASE_FIRST_RESPONSE_HOURS='soon': expected a number"),
    ("CASE_HOLIDAY_SUBDIVISION", "Yorkshire", "expected one of ENG, NIR, SCT, WLS"),
    ("CASE_TIMEZONE", "Europe/Carlisle", "expected a time zone"),
    ("WEBCHAT_HOLIDAY_SUBDIV", "Cumbria", "expected one of ENG, NIR, SCT, WLS or nothing"),
    ("WEBCHAT_TIMEZONE", "Cumbria/Carlisle", "WEBCHAT_TIMEZONE='Cumbria/Carlisle': expected a time zone"),
    ("PORTAL_TRACK_LIMIT", "lots", "PORTAL_TRACK_LIMIT='lots': expected rate limits such as"),  # an area's
    ("OPEN311_POST_LIMIT", "120/fortnight", "OPEN311_POST_LIMIT='120/fortnight': expected rate limits"),
    ("PORTAL_MAX_PHOTO_BYTES", "10MB", "PORTAL_MAX_PHOTO_BYTES='10MB': expected a whole number"),
])
def test_a_setting_that_cannot_work_stops_the_start_naming_the_variable(monkeypatch, name, value, said):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=said):
        create_app(TEST_APP)


def test_a_rate_limit_of_config_py_that_does_not_parse_stops_the_start():
    with pytest.raises(ValueError, match="RESIDENT_MAIL_PER_RECIPIENT='often': expected rate limits"):
        create_app({**TEST_APP, "RESIDENT_MAIL_PER_RECIPIENT": "often"})


def test_an_unknown_log_level_stops_the_start():
    with pytest.raises(ValueError, match="LOG_LEVEL='LOUD': expected one of DEBUG, INFO"):
        create_app({**TEST_APP, "LOG_LEVEL": "LOUD"})


def test_a_variable_not_set_means_the_default():
    settings = {}
    fill_from_environment(settings, {"A_NUMBER_NOBODY_SETS": 3})
    assert settings == {"A_NUMBER_NOBODY_SETS": 3}


def test_values_are_read_as_their_defaults_types(monkeypatch):
    monkeypatch.setenv("SOME_SWITCH", "off")
    monkeypatch.setenv("SOME_COUNT", " 12 ")
    monkeypatch.setenv("SOME_SHARE", "0.25")
    monkeypatch.setenv("SOME_NAME", "")
    settings = {}
    fill_from_environment(settings, {"SOME_SWITCH": True, "SOME_COUNT": 1, "SOME_SHARE": 1.0, "SOME_NAME": "x"})
    assert settings == {"SOME_SWITCH": False, "SOME_COUNT": 12, "SOME_SHARE": 0.25, "SOME_NAME": "x"}
    monkeypatch.setenv("SOME_SWITCH", "perhaps")
    with pytest.raises(ValueError, match="SOME_SWITCH='perhaps': expected yes or no"):
        fill_from_environment({}, {"SOME_SWITCH": True})


def test_old_switches_and_typed_settings_hear_the_same_yes_words(monkeypatch):
    for word in ("1", "true", "Yes", " on "):
        monkeypatch.setenv("SOME_SWITCH", word)
        settings = {}
        fill_from_environment(settings, {"SOME_SWITCH": False})
        assert _bool("SOME_SWITCH") is True and settings == {"SOME_SWITCH": True}
    monkeypatch.setenv("SOME_SWITCH", "perhaps")
    assert _bool("SOME_SWITCH", default=True) is False  # an old switch: anything else means no


@pytest.mark.parametrize("value", ["Europe/London", "UTC", "Europe/Belfast"])
def test_a_time_zone_setting_is_taken_when_it_names_one(value):
    check_time_zone("ANY_TIMEZONE", value)


@pytest.mark.parametrize("value", ["Europe/Carlisle", "", None, "../etc/passwd"])
def test_a_time_zone_setting_that_names_none_is_refused_naming_the_variable(value):
    with pytest.raises(ValueError, match=f"ANY_TIMEZONE={value!r}: expected a time zone"):
        check_time_zone("ANY_TIMEZONE", value)


def test_one_part_of_the_uk_sets_the_bank_holidays_of_case_slas_and_webchat_hours(monkeypatch):
    monkeypatch.setenv("CASE_HOLIDAY_SUBDIVISION", "SCT")
    app = create_app(TEST_APP)
    with app.app_context():
        assert WorkingCalendar.from_config().is_bank_holiday(ST_ANDREWS_DAY)
        assert hours.is_bank_holiday(ST_ANDREWS_DAY)
    monkeypatch.setenv("WEBCHAT_HOLIDAY_SUBDIV", "ENG")  # webchat may still keep another part's
    app = create_app(TEST_APP)
    with app.app_context():
        assert WorkingCalendar.from_config().is_bank_holiday(ST_ANDREWS_DAY)
        assert not hours.is_bank_holiday(ST_ANDREWS_DAY)


@pytest.mark.parametrize("command", [["-m", "flask", "--app", "wsgi", "crm", "sla-sweep"], ["-m", "crm.worker"],
                                     ["wsgi.py"]])
@pytest.mark.parametrize("name, value, said", [
    ("CASE_HOLIDAY_SUBDIVISION", "Yorkshire", "expected one of ENG, NIR, SCT, WLS"),  # an area's setting
    ("SMTP_PORT", "smtp", "expected a whole number"),  # one of config.py's own
])
def test_a_misconfigured_start_says_which_variable_in_one_line_without_a_traceback(tmp_path, command, name, value,
                                                                                   said):
    environment = dict(os.environ, CRM_NO_MONKEY_PATCH="1", DATABASE_URL=f"sqlite:///{tmp_path / 'crm.sqlite3'}",
                       PORT="0", **{name: value})
    started = subprocess.run([sys.executable, *command], cwd=ROOT, env=environment, capture_output=True, text=True,
                             timeout=60)
    assert started.returncode == 1
    assert started.stderr.strip() == f"crm: {name}={value!r}: {said}"
