"""Benchmark help-article search over 10,000 articles, on SQLite (FTS5) and PostgreSQL (tsvector).

Builds (or reuses) a database through the migrations with 10,000 published articles of council-like
text (the triggers keep the full-text index, as in production), then times:

- `crm.knowledge.search.search` for resident-like queries, one "request" per call (session removed);
- `GET /help/suggest?q=` through the app (server time: routing, search, JSON) for every prefix a
  resident produces while typing a question, as help-suggest.js sends them.

Prints p50/p95/p99 per backend on stdout (targets: search p95 < 20 ms, suggest p95 < 30 ms); progress
on stderr.

    .venv/bin/python bench/knowledge_search.py                      # both backends
    .venv/bin/python bench/knowledge_search.py --backend sqlite --samples 200
"""
from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from bench.datagen import log, quiet_warnings, with_search_path  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/crm_bench"
PG_SCHEMA = "bench_knowledge_v2"
SQLITE_PATH = ROOT / "bench" / "data" / "knowledge-10k-v2.sqlite3"
ARTICLES = 10_000
SEARCH_TARGET_MS, SUGGEST_TARGET_MS = 20.0, 30.0

TOPICS = {
    "waste": "bin bins collection collections missed recycling refuse rubbish wheelie garden waste bulky fly tipping "
             "crew round calendar household tip recycling centre glass plastic paper food caddy",
    "highways": "pothole potholes road roads pavement street light lighting lamp column gritting grit snow ice "
                "drain gully flooding sign signs traffic parking verge hedge tree",
    "council_tax": "council tax bill discount single person exemption student band valuation direct debit "
                   "payment instalment arrears reminder moving home account",
    "libraries": "library libraries book books loan renew reserve membership card opening hours computer "
                 "printing events children reading ebook audiobook",
    "adult_social_care": "care carer carers assessment support home help equipment adaptations blue badge "
                         "day centre respite safeguarding independence",
    "archives": "archive archives records parish register baptism marriage burial census family history search "
                "room visit copies maps deeds",
}
COMMON = ("how when where what apply report request pay change cancel check find contact online form "
          "week month day days working time cost price free charge help advice information service area "
          "resident residents property address postcode council team officer visit call email letter").split()
QUERIES = [
    "missed bin collection", "when is my bin collected", "garden waste subscription price", "report a pothole",
    "street light not working", "council tax single person discount", "renew library books", "blue badge apply",
    "family history parish records", "bulky waste collection cost", "gritting my road", "direct debit council tax",
    "library opening hours", "care assessment for my mum", "flooding on the road", "replacement wheelie bin",
    "moving home council tax", "fly tipping", "recycling centre opening times", "baptism records 1850",
]


def _vocabulary(rng: random.Random, size: int = 4000) -> list[str]:
    """Return a general vocabulary: COMMON words, then pronounceable made-up words (Zipf-ranked by position)."""
    syllables = ["ba", "ce", "di", "fo", "gu", "ha", "je", "ki", "lo", "mu", "na", "pe", "ri", "so", "tu", "va",
                 "we", "yo", "zen", "tor", "mar", "lin", "dal", "ber", "cot", "rum", "sel", "wick", "ton", "ley"]
    words = list(COMMON)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def article_rows(n: int, seed: int = 2026):
    """Yield article dicts like a real knowledge base's: each about a few words of its service's topic
    (in the title, keywords and repeated in the body), the rest of the body ordinary text drawn from a
    large Zipf-distributed vocabulary, so a query matches tens to hundreds of articles, not thousands."""
    rng = random.Random(seed)
    vocabulary = _vocabulary(rng)
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    services = list(TOPICS)
    for i in range(n):
        service = services[i % len(services)]
        subject = rng.sample(TOPICS[service].split(), 3)
        filler = rng.choices(vocabulary, weights, k=rng.randint(150, 400))
        for word in subject * rng.randint(2, 5):
            filler.insert(rng.randrange(len(filler)), word)
        yield {"slug": f"article-{i}", "title": " ".join(subject + rng.choices(vocabulary[:60])).capitalize() + f" ({i})",
               "summary": " ".join(subject[:2] + rng.choices(vocabulary, weights, k=15)), "body": " ".join(filler),
               "keywords": " ".join(rng.sample(TOPICS[service].split(), 2)), "service": service}


def build(url: str) -> None:
    """Migrate and fill the database with ARTICLES published articles, unless they are already there."""
    from flask_migrate import upgrade

    from crm import create_app
    from crm.extensions import db
    from crm.models import KnowledgeArticle, Service

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        have = db.session.scalar(select(func.count(KnowledgeArticle.id)))
        if have == ARTICLES:
            log(f"reusing {url.split('?')[0]} ({have:,} articles)")
            return
        log(f"building {ARTICLES:,} articles in {url.split('?')[0]}")
        services = {}
        for code in TOPICS:
            service = db.session.scalar(select(Service).where(Service.code == code)) or Service(
                code=code, name=code.replace("_", " ").title(), sla_hours=40)
            db.session.add(service)
            services[code] = service
        db.session.flush()
        for i, row in enumerate(article_rows(ARTICLES), 1):
            service = services[row.pop("service")]
            db.session.add(KnowledgeArticle(status="published", audience="public", service_id=service.id, **row))
            if i % 1000 == 0:
                db.session.commit()
                log(f"  {i:,} articles")
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE knowledge_articles"))


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": statistics.median(ordered), "p95": pick(0.95), "p99": pick(0.99), "n": len(ordered)}


def typing_prefixes(query: str) -> list[str]:
    """Return what help-suggest.js sends while a resident types the query (from three characters on)."""
    return [query[:i] for i in range(3, len(query) + 1)]


def measure(url: str, samples: int) -> dict:
    """Time search() and /help/suggest on one database; return the percentiles in milliseconds."""
    from crm import create_app
    from crm.extensions import db
    from crm.knowledge import search

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "RATELIMIT_ENABLED": False})
    rng = random.Random(7)
    found = 0
    with app.app_context():
        for query in QUERIES:  # warm the caches and the connection pool
            search.search(query)
            db.session.remove()
        search_ms = []
        for _ in range(samples):
            query = rng.choice(QUERIES)
            start = time.perf_counter()
            found += bool(search.search(query, limit=10))
            search_ms.append((time.perf_counter() - start) * 1000)
            db.session.remove()
    client = app.test_client()
    suggest_ms = []
    for query in QUERIES * max(1, samples // 200):
        for prefix in typing_prefixes(query):
            start = time.perf_counter()
            answer = client.get("/help/suggest", query_string={"q": prefix})
            suggest_ms.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 200
    return {"search": percentiles(search_ms), "suggest": percentiles(suggest_ms), "hit_rate": found / samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    quiet_warnings()
    urls = []
    if args.backend in ("sqlite", "both"):
        SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        urls.append(("sqlite", f"sqlite:///{SQLITE_PATH}"))
    if args.backend in ("postgresql", "both"):
        admin = create_engine(args.pg_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        name = args.pg_url.rsplit("/", 1)[1]
        with admin.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        engine = create_engine(args.pg_url)
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}"))
        engine.dispose()
        urls.append(("postgresql", with_search_path(args.pg_url, PG_SCHEMA)))
    print(f"Help-article search over {ARTICLES:,} articles ({args.samples} searches per backend; "
          f"suggest = every typed prefix of {len(QUERIES)} questions through GET /help/suggest)")
    for backend, url in urls:
        build(url)
        figures = measure(url, args.samples)
        s, g = figures["search"], figures["suggest"]
        print(f"{backend:10s} search  p50 {s['p50']:6.2f} ms  p95 {s['p95']:6.2f} ms  p99 {s['p99']:6.2f} ms "
              f"(target p95 < {SEARCH_TARGET_MS:.0f}; {figures['hit_rate']:.0%} of searches found articles)")
        print(f"{backend:10s} suggest p50 {g['p50']:6.2f} ms  p95 {g['p95']:6.2f} ms  p99 {g['p99']:6.2f} ms "
              f"(target p95 < {SUGGEST_TARGET_MS:.0f}; {g['n']} requests)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
