"""Test data factories; each commits so the data is visible to any client or server."""
import itertools

from crm.auth.accounts import create_token, create_user
from crm.cases.service import open_case
from crm.customers.identity import create_customer
from crm.extensions import db
from crm.models import Category, Queue, RoutingRule, Service

_counter = itertools.count(1)


def user(role="agent", password="correct-horse-battery", email=None, name=None, **kw):
    n = next(_counter)
    made = create_user(email or f"{role}{n}@test.example", name or f"{role.title()} {n}", role, password, **kw)
    db.session.commit()
    return made


def token(user):
    secret = create_token(user)
    db.session.commit()
    return secret


def customer(name="Jane Resident", email=None, phone=None, address=None):
    made = create_customer(name, email, phone, address)
    db.session.commit()
    return made


def service(code="highways", name="Highways", categories=(("pothole", "Pothole"),), sla_hours=40, **kw):
    made = Service(code=code, name=name, sla_hours=sla_hours, **kw)
    db.session.add(made)
    db.session.flush()
    queue = Queue(code=f"{code}_cases", name=f"{name} cases", channel="cases", service_id=made.id)
    db.session.add(queue)
    db.session.flush()
    for cat_code, cat_name in categories:
        db.session.add(Category(service_id=made.id, code=cat_code, name=cat_name))
        db.session.add(RoutingRule(category_code=cat_code, service_id=made.id, queue_id=queue.id,
                                   sla_hours=sla_hours))
    db.session.commit()
    return made


def case(customer, service_code="highways", category="pothole", title="Pothole on Main Street", **kw):
    made = open_case(customer, service_code, category, title, kw.pop("description", ""), **kw)
    db.session.commit()
    return made
