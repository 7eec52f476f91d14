"""Fixtures for the knowledge base: services, an editor and a supervisor, and a fixed set of articles."""
import pytest

from crm.extensions import db as _db
from crm.knowledge import articles as service
from crm.knowledge.articles import ArticleChanges
from crm.models import FormDefinition
from tests import factories

# A fixed set for search quality: (title, summary, body, keywords, service, audience).
FIXED_ARTICLES = [
    ("Find your bin collection day", "Check which day your bins are collected.",
     "Bins are collected weekly. Recycling alternates with general waste.", "wheelie refuse rubbish", "waste", "public"),
    ("What to do if your bin was not emptied", "We return within 2 working days.",
     "If your bin was out by 7am and not emptied, report a missed collection.", "missed", "waste", "public"),
    ("Garden waste subscription", "Garden waste is collected March to November.",
     "Grass, leaves and hedge clippings only. The permit goes on the lid.", "green brown", "waste", "public"),
    ("How we repair potholes", "Dangerous potholes are made safe within 24 hours.",
     "Tell us the road and whether the hole is in the wheel track.", "road crater tyre", "highways", "public"),
    ("Street light not working", "Most faults are fixed within 7 working days.",
     "Every lamp column has a number on it.", "lamp dark", "highways", "public"),
    ("Council Tax discounts", "You may pay less if you live alone.",
     "Single person discount is 25 percent off the bill.", "single person student", "council_tax", "public"),
    ("Library opening hours", "Most libraries open 9am to 5pm.",
     "Some libraries open late on Thursdays.", "opening times", "libraries", "public"),
    ("Call script: missed bin", "Check the round before raising a case.",
     "Confirm the address and collection day, then check the crew notes.", "script", "waste", "staff"),
]


@pytest.fixture
def services(app):
    """Waste, Highways, Council Tax and Libraries with a few categories each."""
    made = {
        "waste": factories.service("waste", "Waste and Recycling", categories=(("missed_bin", "Missed bin"),
                                                                                ("garden_waste", "Garden waste"))),
        "highways": factories.service("highways", "Highways", categories=(("pothole", "Pothole"),
                                                                            ("streetlight_fault", "Street light"))),
        "council_tax": factories.service("council_tax", "Council Tax", categories=(("council_tax_discount",
                                                                                    "Discounts"),)),
        "libraries": factories.service("libraries", "Libraries", categories=(("library_membership", "Membership"),)),
    }
    _db.session.commit()
    return made


@pytest.fixture
def editor(make_user):
    return make_user("editor", email="editor@test.example", name="Eddie Editor")


@pytest.fixture
def supervisor(make_user):
    return make_user("supervisor", email="super@test.example", name="Sue Pervisor")


@pytest.fixture
def fixed_articles(services, editor):
    """Publish the fixed set of articles; returns them by title."""
    made = {}
    for title, summary, body, keywords, service_code, audience in FIXED_ARTICLES:
        made[title] = service.create_article(editor, ArticleChanges(
            title=title, summary=summary, body=body, keywords=keywords.split(), service=service_code,
            audience=audience, status="published"))
    _db.session.commit()
    return made


@pytest.fixture
def pothole_form(services):
    """A published one-page pothole form with a free-text question (suggestions read it as it is typed)."""
    form = FormDefinition(slug="report-a-pothole", title="Report a pothole", service_id=services["highways"].id,
                          category_code="pothole", published=True,
                          fields=[{"name": "details", "label": "Describe the problem", "type": "textarea",
                                   "required": True}])
    _db.session.add(form)
    _db.session.commit()
    return form
