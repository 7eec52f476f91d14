"""Secrets: the public development key never runs a production app; an installation makes its own once."""
import stat

import pytest

from config import DEV_SECRET_KEY, instance_secret_key
from crm import create_app


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
