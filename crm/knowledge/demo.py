"""Demo help: public articles residents find, staff guidance agents read, and one live notice."""
from datetime import timedelta

from sqlalchemy import select

from ..auth.roles import SUPERVISOR
from ..extensions import db
from ..models import KnowledgeArticle, Service, ServiceNotice, User, utcnow

# (slug, service, audience, categories, keywords, title, summary, body)
ARTICLES = [
    ("bin-collection-days", "waste", "public", "missed_bin", "wheelie refuse rubbish recycling day calendar",
     "Find your bin collection day", "Check which day your bins are collected and what to do if one is missed.",
     "## Your collection day\n\nBins are collected every week on the same day. Recycling and general waste "
     "alternate weeks.\n\n## If your bin was missed\n\n- Put it out by 7am on your collection day.\n- If it was "
     "out on time and not emptied, report it within 2 working days.\n- Bank holiday weeks run a day late."),
    ("report-a-missed-bin", "waste", "public", "missed_bin", "missed bin not collected emptied",
     "What to do if your bin was not emptied", "We return within 2 working days if your bin was out on time.",
     "If your bin was out by 7am and was not emptied, [report a missed bin](/forms/).\n\nWe come back within "
     "**2 working days**. Crews note bins that were not out, overfilled or contaminated."),
    ("garden-waste-subscription", "waste", "public", "garden_waste", "green bin brown bin subscription renew",
     "Garden waste subscription", "The garden waste collection runs March to November for a yearly fee.",
     "Garden waste is collected fortnightly from March to November.\n\n- The subscription runs for a year.\n"
     "- Grass, leaves, hedge clippings and small branches only.\n- Your permit sticker goes on the bin lid."),
    ("order-a-new-bin", "waste", "public", "new_bin", "replacement broken stolen lost wheelie bin",
     "Get a new or replacement bin", "Order a bin if yours is lost, stolen or broken.",
     "Replacement bins are delivered within 10 working days. Broken lids and wheels are repaired free of charge."),
    ("pothole-repairs", "highways", "public", "pothole", "road hole crater damage tyre",
     "How we repair potholes", "Potholes that are a danger are made safe within 24 hours.",
     "## How quickly we repair them\n\n- Dangerous: made safe within **24 hours**.\n- Others: repaired within "
     "28 days.\n\nTell us the road, the nearest house number and whether it is in the wheel track."),
    ("street-light-not-working", "highways", "public", "streetlight_fault", "lamp column light out dark",
     "Street light not working", "Most faults are fixed within 7 working days.",
     "Every street light has a number on its column. Give us the number if you can see it.\n\nFaults on the "
     "electricity supply are fixed by the network operator and can take longer."),
    ("gritting-routes", "highways", "public", "gritting", "snow ice salt grit bin winter",
     "Gritting and snow", "Which roads we grit, and how to ask for a grit bin to be refilled.",
     "We grit main roads, bus routes and roads to hospitals and schools first when ice is forecast."),
    ("council-tax-discounts", "council_tax", "public", "council_tax_discount", "single person discount student exemption",
     "Council Tax discounts and exemptions", "You may pay less if you live alone or are a student.",
     "- **Single person discount**: 25% off if you are the only adult.\n- Students and some carers are not "
     "counted.\n\nTell us within 21 days of a change."),
    ("council-tax-moving-home", "council_tax", "public", "council_tax_move", "moving house new address",
     "Council Tax when you move home", "Tell us your moving date and new address so your bill is right.",
     "Tell us the date you move and your new address. We send a final bill for your old home."),
    ("library-opening-hours", "libraries", "public", "library_membership", "opening times open closed",
     "Library opening hours", "Most libraries open 9am to 5pm, Monday to Saturday.",
     "Most libraries are open **9am to 5pm, Monday to Saturday**. Some open late on Thursdays."),
    ("renew-library-books", "libraries", "public", "book_renewal", "renew reserve loan overdue",
     "Renew or reserve library books", "Renew up to 3 times unless someone has reserved the book.",
     "You can renew a loan up to 3 times online, by phone or at any library."),
    ("family-history-records", "archives", "public", "archive_research", "genealogy parish baptism census",
     "Researching your family history", "Our archives hold parish registers, census returns and more.",
     "Parish registers of baptisms, marriages and burials are available in the search room. Book a visit first."),
    ("missed-bin-call-script", "waste", "staff", "missed_bin", "script",
     "Call script: missed bin", "Check the round before raising a case.",
     "1. Confirm the address and the collection day.\n2. Check the round log for a crew note (not out, "
     "contaminated).\n3. If the crew noted nothing, raise a missed bin case: the SLA is 2 working days.\n"
     "4. Offer the help page so they can report it online next time."),
    ("pothole-triage-guidance", "highways", "staff", "pothole", "danger depth triage",
     "Guidance: pothole triage", "Ask depth, width and position to set the priority.",
     "Ask: deeper than 40mm? In a wheel track or on a crossing? If yes to either, set priority **high**."),
    ("safeguarding-first-steps", "adult_social_care", "staff", "safeguarding_adult", "abuse neglect risk",
     "Guidance: a safeguarding concern", "If someone is in immediate danger, call 999 first.",
     "If anyone is in immediate danger, tell the caller to call 999.\n\nOtherwise take details and raise a "
     "safeguarding case: it goes straight to the Adult Social Care duty team."),
]


def seed_knowledge() -> None:
    """Add the demo help articles and one live notice about bin collections."""
    services = {s.code: s for s in db.session.scalars(select(Service))}
    owner = db.session.scalar(select(User).where(User.role == SUPERVISOR))
    now = utcnow()
    for slug, service, audience, categories, keywords, title, summary, body in ARTICLES:
        db.session.add(KnowledgeArticle(
            slug=slug, title=title, summary=summary, body=body, service_id=services[service].id if service in services
            else None, categories=categories, keywords=keywords, audience=audience, status="published",
            owner_id=getattr(owner, "id", None), published_at=now, review_on=(now + timedelta(days=180)).date()))
    if "waste" in services:
        db.session.add(ServiceNotice(service_id=services["waste"].id, areas="CA1 CA2 CA3",
                                     message="Bin collections in Carlisle are running a day late this week.",
                                     starts_at=now - timedelta(hours=2), ends_at=now + timedelta(days=5),
                                     created_by_id=getattr(owner, "id", None)))
    db.session.flush()
