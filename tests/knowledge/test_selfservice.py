"""Self-service is measured: journeys answered by help are counted once, priced at the web rate, and the
articles staff use with residents are recorded on the contact or conversation."""
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import ArticleUse, Contact, Conversation, SelfServiceEvent
from tests import factories
from tests.conftest import csrf_from


def _count(**where):
    return db.session.scalar(select(func.count()).select_from(SelfServiceEvent).filter_by(**where))


def test_each_resident_page_suggests_help_without_javascript(client, fixed_articles, pothole_form):
    form_page = client.get("/forms/report-a-pothole").get_data(as_text=True)
    assert "See related help" in form_page and "How we repair potholes" in form_page
    assert 'data-fields="details"' in form_page                 # typed answers drive live suggestions
    chat = client.get("/chat").get_data(as_text=True)
    assert 'data-surface="chat"' in chat and 'data-fields="first-message"' in chat


def test_suggestions_follow_what_is_typed(client, fixed_articles):
    items = client.get("/help/suggest?q=the+street+lamp+outside+is+dark").get_json()["items"]
    assert items[0]["title"] == "Street light not working"
    assert items[0]["url"] == "/help/street-light-not-working"
    assert client.get("/help/suggest?q=").get_json() == {"items": []}
    assert client.get("/help/suggest?q=" + "x" * 5000).status_code == 200


def test_this_answered_my_question_counts_once_per_journey(client, fixed_articles):
    page = client.get("/chat").get_data(as_text=True)
    token = re.search(r'data-csrf="([^"]+)"', page).group(1)   # what help-suggest.js sends
    headers = {"X-CSRFToken": token, "Accept": "application/json"}
    first = client.post("/help/answered", data={"surface": "chat", "article": "street-light-not-working"},
                        headers=headers)
    assert first.get_json() == {"counted": True}
    again = client.post("/help/answered", data={"surface": "chat", "article": "how-we-repair-potholes"}, headers=headers)
    assert again.get_json() == {"counted": False}
    other_surface = client.post("/help/answered", data={"surface": "track", "article": "how-we-repair-potholes"},
                                headers=headers)
    assert other_surface.get_json() == {"counted": True}
    assert _count(kind="deflected") == 2
    staff_only = client.post("/help/answered", data={"surface": "form", "article": "call-script-missed-bin"},
                             headers=headers)
    assert staff_only.get_json() == {"counted": False}          # only public help can answer a resident
    assert client.post("/help/answered", data={"surface": "form", "article": "x"}).status_code == 400  # no CSRF


def test_without_javascript_the_related_help_button_thanks_the_resident(client, fixed_articles, pothole_form):
    page = client.get("/forms/report-a-pothole").get_data(as_text=True)
    answer = client.post("/help/answered", data={"csrf_token": csrf_from(page), "surface": "form",
                                                 "article": "how-we-repair-potholes"})
    assert answer.status_code == 200 and "Glad we could help" in answer.get_data(as_text=True)
    assert _count(kind="deflected", surface="form") == 1


def test_self_served_journeys_show_in_the_channel_shift_report(client, fixed_articles, supervisor, api_token):
    page = client.get("/help/how-we-repair-potholes").get_data(as_text=True)
    client.post("/help/how-we-repair-potholes/feedback", data={"useful": "yes", "csrf_token": csrf_from(page)})
    client.post("/help/answered", data={"csrf_token": csrf_from(page), "surface": "chat",
                                        "article": "how-we-repair-potholes"})
    today = date.today().isoformat()
    report = client.get(f"/api/v1/reports/contacts?from={today}&to={today}", headers=api_token(supervisor)).get_json()
    assert report.get("self_served_journeys") == 2, report
    assert report["self_service_saving_gbp"] == pytest.approx(2 * (2.83 - 0.15))
    from crm.supervisor.reports import channel_shift, parse_filters

    shift = channel_shift(parse_filters({"from": today, "to": today}))
    month = shift["months"][-1]
    assert month["contacts"]["self_service"] == 2 and month["self_service_share"] == 1.0


def test_articles_used_on_a_call_are_recorded_on_the_contact(client, auth, fixed_articles, make_user, api_token):
    agent = make_user("agent")
    customer = factories.customer(name="Pat Caller", phone="07700900123")
    db.session.commit()
    article = fixed_articles["What to do if your bin was not emptied"]
    answer = client.post("/api/v1/contacts", headers=api_token(agent), json={
        "channel": "phone", "customer_id": customer.id, "category": "missed_bin", "notes": "Bin missed",
        "outcome": "signposted", "articles": [article.id, 99999]})
    assert answer.status_code == 201, answer.get_json()
    uses = db.session.scalars(select(ArticleUse)).all()
    assert [(u.article_id, u.contact_id, u.channel) for u in uses] == [(article.id, answer.get_json()["id"], "phone")]
    bad = client.post("/api/v1/contacts", headers=api_token(agent), json={
        "channel": "phone", "customer_id": customer.id, "outcome": "signposted", "articles": ["one"]})
    assert bad.status_code == 422


def test_a_help_link_sent_in_a_chat_or_email_is_recorded_on_the_conversation(client, auth, fixed_articles, make_user):
    agent = make_user("agent")
    customer = factories.customer()
    conversation = Conversation(customer_id=customer.id, channel="webchat", status="open", subject="Chat", token="tok-1")
    db.session.add(conversation)
    db.session.commit()
    auth.login(agent)
    token = auth.csrf()
    article = fixed_articles["Garden waste subscription"]
    sent = client.post("/knowledge/uses", json={"article_id": article.id, "conversation_id": conversation.id,
                                                "channel": "chat"}, headers={"X-CSRFToken": token})
    assert sent.status_code == 201 and sent.get_json() == {"recorded": 1}
    use = db.session.scalar(select(ArticleUse))
    assert (use.conversation_id, use.channel, use.user_id) == (conversation.id, "webchat", agent.id)
    assert client.post("/knowledge/uses", json={"article_id": article.id, "conversation_id": 424242},
                       headers={"X-CSRFToken": token}).status_code == 404
    assert client.post("/knowledge/uses", json={"article_id": article.id}).status_code == 400  # no CSRF token
