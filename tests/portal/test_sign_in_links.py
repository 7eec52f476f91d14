"""A sign-in link is built on the configured address: a forged Host header cannot send the secret elsewhere."""
from tests.conftest import csrf_from


def test_a_sign_up_with_a_forged_host_header_mails_a_link_on_the_configured_address(app, client, smtp):
    app.config["CRM_BASE_URL"] = "https://contact.council.example"
    forged = {"Host": "evil.example"}
    page = client.get("/account/sign-up", headers=forged)
    response = client.post("/account/sign-up", headers=forged, data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "name": "Pat Resident", "email": "pat@example.org",
        "password": "a-long-resident-password"})
    assert response.status_code == 200
    link = smtp.link(smtp.wait_for(1)[-1])
    assert link.startswith("https://contact.council.example/account/link/")
    assert "evil.example" not in smtp.text(smtp.messages[-1])
