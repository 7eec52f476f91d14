"""Demo data: Cumbrian council services, queues, routing, staff, customers and their history."""
import random
import sys
from datetime import timedelta

from sqlalchemy import func, select

from .auth.accounts import create_user
from .cases.lifecycle import apply_status
from .cases.service import add_event, mark_sla_states, open_case
from .cases.sla import targets as sla_targets
from .customers.identity import add_address, add_identity, set_name
from .customers.timeline import record_contact
from .extensions import db
from .models import (
    Category, Customer, FormDefinition, Queue, RoutingRule, Service, User, utcnow,
)

SERVICES = [
    ("highways", "Highways", 80, False, [
        ("pothole", "Pothole"), ("streetlight_fault", "Street light not working"),
        ("blocked_drain", "Blocked drain or gully"), ("road_flooding", "Flooding on the road"),
        ("gritting", "Gritting and snow"), ("damaged_sign", "Damaged road sign")]),
    ("waste", "Waste and Recycling", 40, False, [
        ("missed_bin", "Missed bin collection"), ("new_bin", "New or replacement bin"),
        ("bulky_waste", "Bulky waste collection"), ("fly_tipping", "Fly-tipping"),
        ("garden_waste", "Garden waste subscription")]),
    ("adult_social_care", "Adult Social Care", 24, True, [
        ("care_assessment", "Needs assessment request"), ("safeguarding_adult", "Safeguarding concern"),
        ("carer_support", "Support for carers"), ("blue_badge", "Blue Badge")]),
    ("libraries", "Libraries", 80, False, [
        ("library_membership", "Library membership"), ("book_renewal", "Renewals and reservations"),
        ("library_event", "Events and room hire")]),
    ("archives", "Archives", 120, False, [
        ("archive_research", "Family history and research enquiry"),
        ("archive_copy", "Copies of records"), ("archive_visit", "Book a visit to the search room")]),
    ("council_tax", "Council Tax", 40, False, [
        ("council_tax_bill", "Council Tax bill query"), ("council_tax_discount", "Discounts and exemptions"),
        ("council_tax_move", "Moving home"), ("council_tax_payment", "Payments and Direct Debit")]),
]

STAFF = [
    ("admin@council.example", "Alex Admin", "admin", None),
    ("agent@council.example", "Bethany Agent", "agent", None),
    ("agent2@council.example", "Callum Agent", "agent", None),
    ("supervisor@council.example", "Siobhan Supervisor", "supervisor", None),
    ("highways.officer@council.example", "Harry Highways", "service_officer", "highways"),
    ("asc.officer@council.example", "Ruth Social Care", "service_officer", "adult_social_care"),
]

FIRST = ("John Mary David Susan Peter Margaret Andrew Helen James Linda Robert Janet Michael Carol "
         "William Ann Thomas Christine Richard Elizabeth Stephen Karen Paul Patricia Mark Sarah Ian "
         "Gillian Graham Alison Neil Joanne Stuart Fiona Craig Emma Wayne Rachel Dean Hannah Jack "
         "Olivia Harry Amelia Oliver Isla George Ava Noah Mia Alfie Lily Ewan Morag").split()
LAST = ("Armstrong Graham Bell Elliot Nixon Irving Robson Dixon Routledge Hodgson Atkinson Holliday "
        "Wilson Jackson Tweddle Bowness Fisher Tyson Birkett Benson Dobson Hetherington Pattinson "
        "Stamper Relph Nicholson Todd Teasdale Wright Thompson Brown Smith Taylor Walker Harrison "
        "Moffat Lowther Musgrave Salkeld Fell Kirkbride Sewell Ritson Wharton").split()
PLACES = [
    ("Carlisle", ["CA1 1RD", "CA1 2NP", "CA2 4QR", "CA2 5TL", "CA3 8JJ", "CA3 9PW"]),
    ("Penrith", ["CA11 7YA", "CA11 8QF", "CA11 9BU"]),
    ("Keswick", ["CA12 4NR", "CA12 5DG"]),
    ("Cockermouth", ["CA13 0AA", "CA13 9JL"]),
    ("Workington", ["CA14 2RS", "CA14 3YP"]),
    ("Whitehaven", ["CA28 7LY", "CA28 6SL"]),
    ("Kendal", ["LA9 4DQ", "LA9 6EZ", "LA9 7SZ"]),
    ("Barrow-in-Furness", ["LA14 1HF", "LA14 2LD", "LA13 9PX"]),
    ("Ulverston", ["LA12 7LY"]),
    ("Ambleside", ["LA22 0BB", "LA22 9DH"]),
    ("Appleby-in-Westmorland", ["CA16 6QN"]),
]
STREETS = ("Main Street, Church Lane, Station Road, Fell View, Lowther Street, Botchergate, Stricklandgate, "
           "Lake Road, Market Place, Scotch Street, Brunswick Road, Greenside, Beck Side").split(", ")
CHANNEL_WEIGHTS = [("phone", 50), ("email", 20), ("web_form", 15), ("webchat", 10), ("face_to_face", 5)]
OUTCOME_WEIGHTS = [("resolved_first_time", 55), ("signposted", 15), ("case_raised", 20),
                   ("transferred", 5), ("abandoned", 5)]
NOTES = [
    "Caller asked when it would be sorted; explained the process.",
    "Resident reported the problem; advised of timescales.",
    "Gave the web link for self-service next time.",
    "Explained eligibility and sent the leaflet.",
    "Resident happy with the answer.",
    "Follow-up promised within five working days.",
]


def is_empty() -> bool:
    """Say whether the database has no services and no users yet."""
    return not db.session.scalar(select(func.count(Service.id))) and not db.session.scalar(
        select(func.count(User.id)))


def seed_services():
    """Create the services, their categories, queues and routing rules."""
    for code, name, sla, sensitive, categories in SERVICES:
        service = Service(code=code, name=name, sla_hours=sla, sensitive=sensitive,
                          email_address=f"{code.replace('_', '-')}@council.example")
        db.session.add(service)
        db.session.flush()
        cases_queue = Queue(code=f"{code}_cases", name=f"{name} cases", channel="cases", service_id=service.id)
        email_queue = Queue(code=f"{code}_email", name=f"{name} email", channel="email", service_id=service.id)
        db.session.add_all([cases_queue, email_queue])
        db.session.flush()
        for position, (cat_code, cat_name) in enumerate(categories):
            db.session.add(Category(service_id=service.id, code=cat_code, name=cat_name))
            db.session.add(RoutingRule(position=position + 1, category_code=cat_code, service_id=service.id,
                                       queue_id=cases_queue.id, priority="normal", sla_hours=sla))
    db.session.add(Service(code="general", name="General enquiries", sla_hours=40))
    db.session.flush()
    general = db.session.scalar(select(Service).where(Service.code == "general"))
    db.session.add(Category(service_id=general.id, code="general_enquiry", name="General enquiry"))
    db.session.add_all([
        Queue(code="webchat", name="Webchat", channel="webchat"),
        Queue(code="general_email", name="General email", channel="email", service_id=general.id),
        Queue(code="phone", name="Phone", channel="phone"),
    ])
    highways = db.session.scalar(select(Service).where(Service.code == "highways"))
    db.session.add(FormDefinition(
        slug="report-a-pothole", title="Report a pothole", service_id=highways.id, category_code="pothole",
        description="Tell us about a pothole on a road or pavement.",
        fields=[
            {"name": "location", "label": "Where is the pothole?", "type": "text", "required": True,
             "hint": "Street name and nearest house number or landmark", "location": True},
            {"name": "size", "label": "How big is it?", "type": "radios", "required": True,
             "options": ["Smaller than a dinner plate", "Larger than a dinner plate", "Across the whole road"]},
            {"name": "details", "label": "Anything else we should know?", "type": "textarea", "required": False},
            {"name": "photo", "label": "Add a photo (optional)", "type": "file"},
        ]))
    seed_forms()


def seed_forms():
    """Add the web forms residents use most, beyond the pothole form (issue 4)."""
    service_ids = {s.code: s.id for s in db.session.scalars(select(Service))}
    photo = {"name": "photo", "label": "Add a photo (optional)", "type": "file"}
    db.session.add_all([
        FormDefinition(
            slug="missed-bin", title="Report a missed bin collection", service_id=service_ids["waste"],
            category_code="missed_bin", description="Tell us if your bin was not emptied on collection day.",
            next_steps="If the bin was out on time we will return within 2 working days.",
            fields=[
                {"name": "address", "label": "What is the address?", "type": "text", "required": True,
                 "location": True, "error": "Enter the address where the bin was missed"},
                {"name": "bins", "label": "Which bins were missed?", "type": "checkboxes", "required": True,
                 "options": ["General waste (green)", "Recycling (blue)", "Garden waste (brown)", "Food caddy"],
                 "error": "Select the bins that were missed"},
                {"name": "collection_day", "label": "When should it have been collected?", "type": "date",
                 "required": True, "error": "Enter the collection date"},
                {"name": "out_by_7", "label": "Was the bin out by 7am?", "type": "radios", "required": True,
                 "options": ["Yes", "No"], "error": "Select yes if the bin was out by 7am"},
            ]),
        FormDefinition(
            slug="street-light", title="Report a street light fault", service_id=service_ids["highways"],
            category_code="streetlight_fault", one_question_per_page=True,
            description="Report a street light that is out, flickering or on during the day.",
            fields=[
                {"name": "location", "label": "Where is the street light?", "type": "text", "required": True,
                 "location": True, "hint": "Street name and the number on the lamp post if you can see it",
                 "error": "Enter where the street light is"},
                {"name": "fault", "label": "What is wrong with it?", "type": "radios", "required": True,
                 "options": ["Not working at all", "Flickering", "On during the day", "Damaged or leaning"],
                 "error": "Select what is wrong with the street light"},
                photo,
            ]),
        FormDefinition(
            slug="library-membership", title="Join the library", service_id=service_ids["libraries"],
            category_code="library_membership", one_question_per_page=True,
            description="Join for free to borrow books, e-books and audiobooks and use the computers.",
            next_steps="Your card will be ready to collect from the library you chose within 3 working days.",
            fields=[
                {"name": "date_of_birth", "label": "What is your date of birth?", "type": "date", "required": True,
                 "hint": "For example, 27 3 1990", "error": "Enter your date of birth"},
                {"name": "home_address", "label": "What is your home address?", "type": "textarea",
                 "required": True, "error": "Enter your home address"},
                {"name": "library", "label": "Which library will you collect your card from?", "type": "select",
                 "required": True, "error": "Select a library",
                 "options": ["Carlisle", "Penrith", "Keswick", "Kendal", "Barrow-in-Furness", "Whitehaven"]},
            ]),
    ])


def seed_staff(password: str):
    """Create the demo staff accounts."""
    for email, name, role, service_code in STAFF:
        service = db.session.scalar(select(Service).where(Service.code == service_code)) if service_code else None
        create_user(email, name, role, password, service_id=service.id if service else None)


def seed_customers(count: int, rng: random.Random, progress=sys.stderr):
    """Create customers with addresses, identities, contacts and some cases."""
    agents = db.session.scalars(select(User).where(User.role == "agent")).all()
    categories = db.session.scalars(select(Category)).all()
    now = utcnow()
    used_names = set()
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        customer = Customer()
        set_name(customer, f"{first} {last}")
        db.session.add(customer)
        db.session.flush()
        town, postcodes = rng.choice(PLACES)
        add_address(customer, line1=f"{rng.randint(1, 120)} {rng.choice(STREETS)}", town=town,
                    postcode=rng.choice(postcodes), uprn=str(100000000000 + n))
        handle = f"{first}.{last}{'' if (first, last) not in used_names else n}".lower()
        used_names.add((first, last))
        # The demo stands for records imported from the council's previous system: verified.
        add_identity(customer, "email", f"{handle}@example.org", verified=True, source="import")
        add_identity(customer, "phone", f"+4477009{n:05d}", verified=True, source="import")
        started = now - timedelta(days=rng.randint(1, 400), minutes=rng.randint(0, 600))
        for _ in range(rng.randint(1, 6)):
            started += timedelta(days=rng.randint(0, 40), minutes=rng.randint(1, 300))
            if started > now:
                break
            category = rng.choice(categories)
            channel = rng.choices([c for c, _ in CHANNEL_WEIGHTS], [w for _, w in CHANNEL_WEIGHTS])[0]
            outcome = rng.choices([o for o, _ in OUTCOME_WEIGHTS], [w for _, w in OUTCOME_WEIGHTS])[0]
            handled = channel in ("phone", "webchat", "face_to_face")
            contact = record_contact(
                customer, channel, summary=f"{category.name}", notes=rng.choice(NOTES), category=category.code,
                outcome=outcome, agent=rng.choice(agents) if handled and agents else None,
                started_at=started, ended_at=started + timedelta(seconds=rng.randint(60, 900)) if handled else None,
                occurred_at=started)
            if outcome == "case_raised":
                case = open_case(customer, category.service.code, category.code, category.name,
                                 rng.choice(NOTES), contact=contact)
                for event in case.events:
                    event.occurred_at = started
                case.created_at = started
                # Targets from when the case was (notionally) raised, not from seeding time.
                case.first_response_due_at, case.sla_due_at = sla_targets(started, case.sla_hours)
                if rng.random() < 0.6:
                    # Worked, then resolved, through the lifecycle's own checks, at the notional times.
                    worked = started + timedelta(hours=rng.randint(1, 48))
                    resolved = worked + timedelta(days=rng.randint(1, 10))
                    for to_status, when in (("in_progress", worked), ("resolved", resolved)):
                        previous = apply_status(case, to_status, when)
                        add_event(case, "status_changed", from_value=previous, to_value=to_status, occurred_at=when)
                    add_event(case, "public_update", body="This has now been dealt with. Thank you for reporting it.",
                              public=True, occurred_at=resolved)
        if (n + 1) % 50 == 0 or n + 1 == count:
            print(f"\rseeding customers {n + 1}/{count}", end="", file=progress, flush=True)
    print(file=progress)


def seed_demo(password: str, customers: int = 300, seed: int = 2026):
    """Load the whole demo data set into an empty database."""
    rng = random.Random(seed)
    seed_services()
    seed_staff(password)
    seed_customers(customers, rng)
    mark_sla_states()  # flag the demo's overdue and at-risk cases as the SLA job would
    from .webchat.demo import seed_webchat

    seed_webchat()
    from .knowledge.demo import seed_knowledge

    seed_knowledge()
    db.session.commit()
    from .channels.email.demo import seed_email_demo

    seed_email_demo()
