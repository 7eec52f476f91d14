"""Where a problem is: the caller's address or a typed street/postcode, with coordinates only from what we hold."""
import pytest

from crm.cases.places import find_postcode, known_coordinates
from crm.extensions import db
from crm.models import Case
from tests import factories
from tests.conftest import csrf_from


@pytest.fixture
def highways(app):
    return factories.service("highways", "Highways", categories=(("pothole", "Pothole"),))


def test_postcodes_are_found_in_what_people_type():
    assert find_postcode("outside 3 fell view, keswick ca124nr") == "CA12 4NR"
    assert find_postcode("Main Street") is None


def test_coordinates_come_from_the_same_address_else_the_postcodes_earlier_reports(highways, db):
    other = factories.customer("Sam")
    factories.case(other, location_address="3 Fell View, Keswick CA12 4NR", latitude=54.6, longitude=-3.13)
    factories.case(other, location_address="9 Fell View, Keswick CA124NR", latitude=54.602, longitude=-3.132)
    assert known_coordinates("3 fell view, keswick ca12 4nr") == (54.6, -3.13)
    lat, lon = known_coordinates("1 Fell View, Keswick, CA12 4NR")
    assert abs(lat - 54.601) < 1e-9 and abs(lon + 3.131) < 1e-9
    assert known_coordinates("Somewhere, LA9 4AB") == (None, None)


def test_a_case_raised_at_the_callers_address_or_a_typed_place(client, auth, make_user, highways, db):
    assert auth.login(make_user("agent")).status_code == 302
    jane = factories.customer("Jane", address={"line1": "1 Fell View", "town": "Keswick", "postcode": "CA12 4NR"})
    html = client.get(f"/customers/{jane.id}/cases/new").get_data(as_text=True)
    assert "The caller&#39;s address: 1 Fell View, Keswick, CA12 4NR" in html and 'checked' in html
    form = {"csrf_token": csrf_from(html), "category": "pothole", "title": "Hole"}
    missing = client.post(f"/customers/{jane.id}/cases/new", data=form | {"where": "other"})
    assert missing.status_code == 400 and "Enter a street, landmark or postcode" in missing.get_data(as_text=True)
    address_id = jane.addresses[0].id
    assert client.post(f"/customers/{jane.id}/cases/new",
                       data=form | {"where": f"address-{address_id}"}).status_code == 302
    case = db.session.query(Case).filter_by(customer_id=jane.id).one()
    assert case.location_address == "1 Fell View, Keswick, CA12 4NR" and case.latitude is None
