"""Article search: the database's own full-text engine, ranked, with prefix matching (both databases)."""
import pytest

from crm.extensions import db
from crm.knowledge import search
from crm.knowledge.articles import ArticleChanges, update_article


@pytest.mark.parametrize("query, expected_first", [
    ("bin collection day", "Find your bin collection day"),
    ("my bin was not emptied", "What to do if your bin was not emptied"),
    ("garden", "Garden waste subscription"),
    ("pothole", "How we repair potholes"),
    ("potho", "How we repair potholes"),                     # a prefix, as a resident is still typing
    ("lamp post dark", "Street light not working"),           # keywords count
    ("single person discount", "Council Tax discounts"),
    ("librar opening", "Library opening hours"),
    ("wheelie", "Find your bin collection day"),
])
def test_the_expected_article_comes_first(fixed_articles, query, expected_first):
    results = search.search(query)
    assert results, query
    assert results[0].title == expected_first


def test_titles_weigh_more_than_bodies(fixed_articles):
    titles = [a.title for a in search.search("collection")]
    assert titles.index("Find your bin collection day") < titles.index("What to do if your bin was not emptied")


def test_a_resident_never_finds_staff_guidance_or_drafts(fixed_articles, editor):
    assert all(a.audience == "public" for a in search.search("missed bin script"))
    staff = search.search("script", audiences=("public", "staff"))
    assert [a.title for a in staff] == ["Call script: missed bin"]
    garden = fixed_articles["Garden waste subscription"]
    update_article(editor, garden, ArticleChanges(status="draft"))
    db.session.commit()
    assert "Garden waste subscription" not in [a.title for a in search.search("garden")]


def test_an_edit_is_searchable_at_once(fixed_articles, editor):
    article = fixed_articles["Library opening hours"]
    update_article(editor, article, ArticleChanges(title="Library opening hours and mobile library stops"))
    db.session.commit()
    assert search.search("mobile library")[0].id == article.id


def test_words_that_match_nothing_together_still_find_each_word(fixed_articles):
    titles = [a.title for a in search.search("pothole library")]
    assert {"How we repair potholes", "Library opening hours"} <= set(titles)


@pytest.mark.parametrize("query", ["", "   ", "the and of", "\"*)(", "' OR 1=1 --", "NEAR(", "a" * 500, "😀"])
def test_odd_queries_answer_quietly(fixed_articles, query):
    assert isinstance(search.search(query), list)


def test_service_filter_keeps_to_the_service(fixed_articles, services):
    results = search.search("day", service_id=services["libraries"].id)
    assert all(a.service_id == services["libraries"].id for a in results)
