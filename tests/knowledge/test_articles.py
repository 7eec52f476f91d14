"""Articles: drafted and published by editors with versions; public ones on /help, staff ones in the console."""
from crm.extensions import db
from crm.knowledge.articles import ArticleChanges, create_article, update_article
from crm.models import ArticleVersion, AuditLog, KnowledgeArticle


def _article_payload(**overrides):
    payload = {"title": "Clinical waste collections", "summary": "Free collections for medical waste at home.",
               "body": "## Who can get one\n\nResidents who use sharps at home.", "audience": "public",
               "service": "waste", "categories": ["missed_bin"], "keywords": ["sharps", "needles"],
               "status": "draft"}
    payload.update(overrides)
    return payload


def test_an_editor_drafts_then_publishes_and_each_change_is_a_version(client, services, editor, api_token):
    headers = api_token(editor)
    made = client.post("/api/v1/articles", json=_article_payload(), headers=headers)
    assert made.status_code == 201, made.get_json()
    article = made.get_json()
    assert article["status"] == "draft" and article["slug"] == "clinical-waste-collections"
    assert client.get(f"/help/{article['slug']}").status_code == 404          # a draft is not public
    assert client.get("/help/suggest?q=sharps").get_json()["items"] == []

    published = client.patch(f"/api/v1/articles/{article['id']}", headers=headers,
                             json={"status": "published", "note": "Checked with the waste team"})
    assert published.status_code == 200
    body = published.get_json()
    assert body["version"] == 2
    assert body["versions"][0]["changed"] == ["status"] and body["versions"][0]["note"] == "Checked with the waste team"
    assert body["versions"][0]["edited_by"] == "Eddie Editor"
    page = client.get(f"/help/{article['slug']}")
    assert page.status_code == 200
    assert "Clinical waste collections" in page.get_data(as_text=True)
    assert [i["title"] for i in client.get("/help/suggest?q=needl").get_json()["items"]] == ["Clinical waste collections"]
    assert db.session.query(AuditLog).filter(AuditLog.action.in_(("article.create", "article.update"))).count() == 2


def test_only_editors_supervisors_and_admins_write_articles(client, services, make_user, api_token):
    for role, expected in (("agent", 403), ("service_officer", 403), ("records", 403), ("editor", 201),
                           ("supervisor", 201), ("admin", 201)):
        user = make_user(role, email=f"{role}@test.example")
        answer = client.post("/api/v1/articles", json=_article_payload(title=f"Article by {role}"),
                             headers=api_token(user))
        assert answer.status_code == expected, (role, answer.get_json())
    assert client.post("/api/v1/articles", json=_article_payload()).status_code == 401


def test_bad_articles_are_refused_field_by_field(client, services, editor, api_token):
    headers = api_token(editor)
    answer = client.post("/api/v1/articles", headers=headers,
                         json=_article_payload(title="", audience="everyone", categories=["no_such_thing"]))
    assert answer.status_code == 422
    assert set(answer.get_json()["error"]["fields"]) >= {"title", "audience"}
    unknown = client.post("/api/v1/articles", headers=headers, json=_article_payload(categories=["no_such_thing"]))
    assert unknown.status_code == 422 and "categories" in unknown.get_json()["error"]["fields"]
    assert client.patch("/api/v1/articles/999999", headers=headers, json={"status": "published"}).status_code == 404
    assert client.patch("/api/v1/articles/1", headers=headers, json={"id": 5}).status_code == 422
    assert client.get("/api/v1/articles?limit=100000", headers=headers).status_code == 422


def test_staff_guidance_is_never_public(client, fixed_articles):
    script = fixed_articles["Call script: missed bin"]
    assert client.get(f"/help/{script.slug}").status_code == 404
    assert "Call script" not in client.get("/help/search?q=script").get_data(as_text=True)
    assert client.get("/help/suggest?q=script").get_json()["items"] == []


def test_staff_read_both_audiences_but_only_editors_read_drafts(client, fixed_articles, make_user, api_token, editor):
    agent = api_token(make_user("agent"))
    found = client.get("/api/v1/articles?q=missed+bin", headers=agent).get_json()["items"]
    assert {"public", "staff"} == {a["audience"] for a in found}
    draft = create_article(editor, ArticleChanges(title="Unfinished draft", body="Not ready", service="waste"))
    db.session.commit()
    assert client.get(f"/api/v1/articles/{draft.id}", headers=agent).status_code == 404
    assert client.get(f"/api/v1/articles/{draft.id}", headers=api_token(editor)).status_code == 200


def test_markdown_is_rendered_safely_with_govuk_classes(client, services, editor):
    article = create_article(editor, ArticleChanges(
        title="Safe page", status="published",
        body="# Big\n\nText with <script>alert(1)</script> and [a link](https://council.example/x) and "
             "[bad](javascript:alert(2))\n\n- one\n- two"))
    db.session.commit()
    html = client.get(f"/help/{article.slug}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript:' not in html
    assert '<h2 class="govuk-heading-m">Big</h2>' in html
    assert '<ul class="govuk-list govuk-list--bullet">' in html
    assert '<a class="govuk-link" href="https://council.example/x"' in html


def test_was_this_useful_counts_answers_and_keeps_reasons(client, fixed_articles):
    article = fixed_articles["Garden waste subscription"]
    page = client.get(f"/help/{article.slug}").get_data(as_text=True)
    from tests.conftest import csrf_from

    token = csrf_from(page)
    assert client.post(f"/help/{article.slug}/feedback", data={"useful": "yes", "csrf_token": token}).status_code == 302
    answer = client.post(f"/help/{article.slug}/feedback",
                         data={"useful": "no", "reason": "Did not say the price", "csrf_token": token},
                         follow_redirects=True)
    assert "Thank you for your feedback" in answer.get_data(as_text=True)
    db.session.refresh(article)
    assert (article.useful_yes, article.useful_no) == (1, 1)
    assert client.post(f"/help/{article.slug}/feedback", data={"useful": "yes"}).status_code == 400  # no CSRF token


def test_a_published_link_keeps_its_address_when_the_title_changes(services, editor):
    article = create_article(editor, ArticleChanges(title="Original title", status="published"))
    db.session.commit()
    update_article(editor, article, ArticleChanges(title="A better title"))
    db.session.commit()
    assert article.slug == "original-title"
    assert db.session.query(ArticleVersion).filter_by(article_id=article.id).count() == 2
    assert db.session.get(KnowledgeArticle, article.id).version == 2


def test_the_help_pages_work_without_javascript(client, fixed_articles, services):
    home = client.get("/help/").get_data(as_text=True)
    assert "Waste and Recycling" in home and 'action="/help/search"' in home
    results = client.get("/help/search?q=pothole").get_data(as_text=True)
    assert "How we repair potholes" in results
    by_service = client.get("/help/search?service=libraries").get_data(as_text=True)
    assert "Library opening hours" in by_service
    assert client.get("/help/no-such-page").status_code == 404


def test_staff_knowledge_pages_for_editors_and_readers(client, auth, fixed_articles, editor, make_user):
    auth.login(editor)
    listing = client.get("/knowledge/?q=bin").get_data(as_text=True)
    assert "Call script: missed bin" in listing and "New article" in listing
    page = client.get("/knowledge/new")
    from tests.conftest import csrf_from

    saved = client.post("/knowledge/new", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "title": "Bulky waste prices",
        "summary": "What a collection costs", "body": "Up to 3 items: £25.", "audience": "public",
        "service": "waste", "categories": "", "keywords": "sofa fridge", "status": "published"})
    assert saved.status_code == 302
    bad = client.post("/knowledge/new", data={"csrf_token": csrf_from(page.get_data(as_text=True)), "title": ""})
    assert bad.status_code == 422 and "Enter a title" in bad.get_data(as_text=True)
    auth.logout()
    auth.login(make_user("agent", email="reader@test.example"))
    assert client.get("/knowledge/new").status_code == 403
    assert "Bulky waste prices" in client.get("/knowledge/").get_data(as_text=True)
