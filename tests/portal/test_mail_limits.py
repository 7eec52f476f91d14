"""Mail a resident can trigger is limited per recipient and per requester: the council's mail is no relay."""
import io

from sqlalchemy import func, select

from crm.models import Case
from tests.conftest import csrf_from
from tests.portal.test_forms import GOOD, _post


def _ask_for_link(client, email, ip="203.0.113.5"):
    page = client.get("/account", environ_base={"REMOTE_ADDR": ip})
    return client.post("/account/sign-in-link", environ_base={"REMOTE_ADDR": ip}, data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "link_email": email})


def test_sign_in_links_to_one_address_stop_at_the_limit_and_the_page_does_not_say_so(app, client, smtp, highways):
    app.config["RESIDENT_MAIL_PER_RECIPIENT"] = "2 per hour"
    app.config["PORTAL_LINK_LIMIT"] = "100 per minute"
    client.post("/account/sign-up", data={"csrf_token": csrf_from(client.get("/account/sign-up").get_data(as_text=True)),
                                          "name": "Vic Tim", "email": "victim@example.org", "password": "a-long-password-1"})
    smtp.wait_for(1)
    answers = [_ask_for_link(client, "victim@example.org", ip=f"203.0.113.{n}") for n in range(5)]
    assert all(a.status_code == 200 for a in answers)
    assert len({a.get_data(as_text=True).count("Check your email") for a in answers}) == 1
    smtp.wait_for(5, timeout=2)
    assert [e.rcpt_tos for e in smtp.messages] == [["victim@example.org"]] * 2  # sign-up link + one more


def test_one_requester_cannot_mail_many_addresses(app, client, smtp, highways, pothole_form, db):
    app.config["RESIDENT_MAIL_PER_REQUESTER"] = "2 per hour"
    app.config["PORTAL_SUBMIT_LIMIT"] = "100 per minute"
    for n in range(4):
        answer = _post(client, "report-a-pothole", dict(GOOD, email=f"person{n}@example.org"))
        assert answer.status_code == 303  # every report is taken; only the mail is held back
    assert db.session.scalar(select(func.count()).select_from(Case)) == 4
    smtp.wait_for(4, timeout=2)
    assert len(smtp.messages) == 2
