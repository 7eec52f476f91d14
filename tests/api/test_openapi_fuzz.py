"""A schema-driven fuzzer (schemathesis) over the OpenAPI document: whatever a client sends, no answer is a 5xx,
and every answer has a documented status, content type and body, the {"error": {...}} body included."""
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from crm.extensions import db
from tests import factories

# Enough to reach every operation's error and success paths; the whole run stays well under two minutes.
EXAMPLES_PER_OPERATION = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schemathesis.serializer("message/rfc822")
def raw_message(context, value):
    """Send POST /inbound/email's raw message as the bytes it was generated as."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


def test_every_operation_answers_as_documented_whatever_it_is_sent(app, make_user, api_token):
    factories.service()
    factories.customer("Jane Resident", email="jane@example.org", phone="07700 900123")
    # An admin passes every staff role check, so the fuzzer reaches the operations' own validation.
    headers = api_token(make_user("admin"))
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def answers_as_documented(case):
            try:
                case.call_and_validate(headers=headers, checks=CHECKS)
            except* AssertionError as found:  # one failed check, or a group of them: note it and go on
                failures.setdefault(operation.label, str(found.exceptions[0])[:2000])
            finally:
                db.session.rollback()

        answers_as_documented()
    assert not failures, "\n\n".join(f"{label}:\n{detail}" for label, detail in failures.items())
