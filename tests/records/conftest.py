"""Fixtures of the records area: a records officer and their API token."""
import pytest


@pytest.fixture
def officer(make_user):
    return make_user("records", email="ig@test.example", name="Ivy Governance")


@pytest.fixture
def officer_headers(officer, api_token):
    return api_token(officer)
