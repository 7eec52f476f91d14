"""Whatever arrives at a resident page, the answer is a page or a 4xx, never a 500."""
import io

import pytest

from tests import factories
from tests.conftest import csrf_from

JUNK = ["", "\x00", "A" * 20000, "' OR 1=1 --", "<script>alert(1)</script>", "\ud800".encode("utf-8", "surrogatepass")
        .decode("utf-8", "replace"), "../../etc/passwd", "%00%ff", "🚧" * 300, "-1", "99999999999999999999"]


@pytest.fixture
def paths(pothole_form, light_form, db):
    resident = factories.customer(email="pat@example.org")
    case = factories.case(resident)
    return {
        "get": ["/forms/", "/forms/report-a-pothole", "/forms/street-light", "/forms/street-light/location",
                "/forms/street-light/check-answers", "/forms/street-light/your-details",
                "/forms/report-a-pothole/confirmation", "/track", f"/track/{case.reference}", "/account",
                "/account/sign-up", "/account/cases/CAS-000001", "/account/preferences", "/account/data.json",
                "/account/link/abc", "/forms/%00", "/track/%ff%fe", "/forms/report-a-pothole/%2e%2e"],
        "post": ["/forms/report-a-pothole", "/forms/street-light", "/forms/street-light/location",
                 "/forms/street-light/fault", "/forms/street-light/photo", "/forms/street-light/your-details",
                 "/forms/street-light/check-answers", "/track", f"/track/{case.reference}/reopen",
                 "/account/sign-in", "/account/sign-in-link", "/account/sign-up", "/account/link/abc",
                 "/account/sign-out", "/account/preferences", "/forms/report-a-pothole/confirmation"],
    }


def test_junk_never_gets_a_500(client, paths):
    for path in paths["get"]:
        for value in JUNK[:4]:
            response = client.get(path, query_string={"reference": value, "change": value})
            assert response.status_code < 500, (path, value)
    token = csrf_from(client.get("/track").get_data(as_text=True))
    fields = ["location", "size", "hazards", "noticed-day", "noticed-month", "noticed-year", "road_type", "details",
              "name", "email", "phone", "reference", "contact", "reason", "password", "link_email", "fault",
              "preferred_channel", "email_updates", "photo_keep_location"]
    for path in paths["post"]:
        for value in JUNK:
            data = {name: value for name in fields}
            data["csrf_token"] = token
            data["photo"] = (io.BytesIO(value.encode("utf-8", "replace")), value[:200] or "x")
            response = client.post(path, data=data, content_type="multipart/form-data")
            assert response.status_code < 500, (path, value[:20], response.status_code)
        assert client.post(path, data={"x": "y"}).status_code == 400  # no CSRF token


def test_wrong_methods_are_405(client, paths):
    assert client.get("/track/CAS-000001/reopen").status_code == 405
    assert client.get("/account/sign-out").status_code == 405
    assert client.delete("/forms/report-a-pothole").status_code == 405
