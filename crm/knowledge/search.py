"""Article search in the database's own full-text engine: SQLite FTS5, PostgreSQL tsvector (English).

Every word typed must match, each word of three letters or more as a prefix ("collect" finds
"collections"). Articles whose title, keywords or summary match are ranked first, from a small
index that never reads the bodies; only when those are too few does the search read bodies too,
and only when nothing matches every word do articles matching any word follow. Title and keywords
weigh most, then the summary, then the body.
"""
import re
from typing import Iterable, Optional

from sqlalchemy import bindparam, text

from ..extensions import db
from ..models import KnowledgeArticle

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_QUERY_WORDS = 8
# Words that say nothing about what a resident wants; they would match almost every article.
STOP_WORDS = frozenset("""a about after all am an and any are as at be been but by can could did do does for from get got
had has have how i if in into is it its just me my need no not of on or our please so that the their them then there
they this to up us was we were what when where which who why will with would you your""".split())


def query_words(query: str) -> list[str]:
    """Return the searchable words of what was typed: lower-case, no stop words, at most eight."""
    words = []
    for word in _WORD.findall((query or "").lower()):
        if word not in STOP_WORDS and word not in words:
            words.append(word[:40])
    return words[:MAX_QUERY_WORDS]


def search(query: str, audiences: Iterable[str] = ("public",), service_id: Optional[int] = None,
           limit: int = 10, statuses: Iterable[str] = ("published",)) -> list[KnowledgeArticle]:
    """Return the articles that match the query, best first."""
    words = query_words(query)
    if not words:
        return []
    ranked: list[int] = []
    for every_word, with_bodies in ((True, False), (True, True), (False, False)):
        if not every_word and (ranked or len(words) == 1):
            break
        found = _ranked_ids(words, every_word, with_bodies, audiences, statuses, service_id, limit)
        ranked += [i for i in found if i not in ranked]
        if len(ranked) >= limit:
            break
    ranked = ranked[:limit]
    found = {a.id: a for a in db.session.query(KnowledgeArticle).filter(KnowledgeArticle.id.in_(ranked))} if ranked else {}
    return [found[i] for i in ranked if i in found]


# A body search ranks at most this many matches: a two-letter prefix can match most of the base.
BODY_CANDIDATES = 1000


def _term(word: str, dialect: str) -> str:
    prefix = len(word) >= 3
    if dialect == "postgresql":
        return f"{word}:*" if prefix else word
    return f'"{word}"*' if prefix else f'"{word}"'


def _ranked_ids(words, every_word, with_bodies, audiences, statuses, service_id, limit) -> list[int]:
    """Run one full-text query over the head (title, keywords, summary) or the whole article."""
    dialect = db.session.get_bind().dialect.name
    filters = "a.status IN :statuses AND a.audience IN :audiences"
    params = {"statuses": list(statuses), "audiences": list(audiences), "limit": limit, "cap": BODY_CANDIDATES}
    if service_id is not None:
        filters += " AND a.service_id = :service_id"
        params["service_id"] = service_id
    terms = [_term(w, dialect) for w in words]
    if dialect == "postgresql":
        params["query"] = (" & " if every_word else " | ").join(terms)
        column = "search_vector" if with_bodies else "search_head"
        sql = (f"SELECT id FROM (SELECT a.id, a.{column} AS v, q FROM knowledge_articles a, "
               f"to_tsquery('english', :query) q WHERE a.{column} @@ q AND {filters} LIMIT :cap) m "
               "ORDER BY ts_rank_cd(v, q) DESC, id LIMIT :limit")
    else:
        match = (" " if every_word else " OR ").join(terms)
        params["query"] = match if with_bodies else f"{{title keywords summary}} : ({match})"
        sql = ("SELECT a.id FROM knowledge_search JOIN knowledge_articles a ON a.id = knowledge_search.rowid "
               f"WHERE knowledge_search MATCH :query AND {filters} "
               "ORDER BY bm25(knowledge_search, 10.0, 8.0, 4.0, 1.0), a.id LIMIT :limit")
    statement = text(sql).bindparams(bindparam("statuses", expanding=True), bindparam("audiences", expanding=True))
    return list(db.session.scalars(statement, params))
