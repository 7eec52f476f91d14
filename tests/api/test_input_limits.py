"""Input that cannot hurt: any /api/v1 route, given absurd JSON, huge or negative numbers, answers 4xx, never 500."""
import json
import re

import pytest

from tests import factories

HUGE = 10**30
DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 100 + "1" + "}" * 100
ID_KEYS = ("customer_id", "agent_id", "id", "limit", "priority", "queue", "assignee", "before", "service",
           "conversation_id", "case_id", "sla_hours", "page", "duplicate_id", "keep_id", "merge_id")


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and "openapi" not in rule.rule:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method


def _fill(rule, value):
    return re.sub(r"<[^>]+>", str(value), rule.rule)


@pytest.fixture
def admin_headers(app):
    admin = factories.user("admin")
    return {"Authorization": f"Bearer {factories.token(admin)}"}


def test_every_api_route_answers_absurd_input_with_a_4xx(app, client, admin_headers):
    failures = []
    factories.customer(email="someone@example.org")
    for rule, method in _routes(app):
        for value in (HUGE, 2**40, -1, 0, "x"):
            path = _fill(rule, value)
            query = "&".join(f"{k}={HUGE}" for k in ID_KEYS)
            bodies = [DEEP, DEEP_OBJECT, json.dumps({k: HUGE for k in ID_KEYS}),
                      json.dumps({k: -1 for k in ID_KEYS}), json.dumps({k: 2**40 for k in ID_KEYS}),
                      '{"customer_id": 1e999}', '{"limit": NaN}', "1" * 5000]
            for body in bodies if method != "GET" else [None]:
                answer = client.open(f"{path}?{query}", method=method, headers=admin_headers,
                                     data=body, content_type="application/json")
                if answer.status_code >= 500:
                    failures.append(f"{method} {path} {str(body)[:40]}: {answer.status_code}")
    assert failures == []


def test_a_deeply_nested_body_is_a_clear_400(client, admin_headers):
    answer = client.post("/api/v1/customers", headers=admin_headers, data=DEEP, content_type="application/json")
    assert answer.status_code == 400
    assert "nested" in answer.get_json()["error"]["message"]


def test_an_integer_beyond_64_bits_is_a_400_in_a_body_or_a_query(client, admin_headers):
    body = client.post("/api/v1/cases", headers=admin_headers, json={"customer_id": HUGE})
    assert body.status_code == 400 and body.get_json()["error"]["code"] == "bad_request"
    query = client.get(f"/api/v1/customers/1/timeline?limit={HUGE}", headers=admin_headers)
    assert query.status_code == 400


def test_an_id_too_big_for_any_column_is_not_found(client, admin_headers):
    assert client.get(f"/api/v1/customers/{2**40}", headers=admin_headers).status_code == 404
    assert client.get(f"/api/v1/conversations/{HUGE}", headers=admin_headers).status_code == 404
