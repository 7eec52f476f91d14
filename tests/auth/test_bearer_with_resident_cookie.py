"""A bearer token is judged alone, even from a client that also carries a resident page's session cookie."""


def test_a_bearer_token_still_works_after_visiting_a_resident_page(client, make_user, api_token):
    headers = api_token(make_user("supervisor"))
    assert client.get("/api/v1/queues", headers=headers).status_code == 200
    client.get("/track")  # a resident page: the session now holds a CSRF token but no signed-in user
    assert client.get("/api/v1/queues", headers=headers).status_code == 200
    assert client.get("/api/v1/queues").status_code == 401
