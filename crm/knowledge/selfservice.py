"""Journeys that ended in self-service, counted once per journey so channel shift is measured.

A journey is one resident's visit to one surface (the help pages, the chat form, a web form,
/track): a random id kept in their session, with the surface. It counts when they mark an article
useful, or say a suggested article answered their question and leave without contacting us.
"""
import secrets
from collections import defaultdict
from datetime import datetime
from typing import Optional

from flask import session
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import SELF_SERVICE_SURFACES, KnowledgeArticle, SelfServiceEvent

JOURNEY_KEY = "help_journey"


def journey_id(surface: str) -> str:
    """Return this visitor's journey id on a surface, starting one in their session if needed."""
    if surface not in SELF_SERVICE_SURFACES:
        surface = "help"
    base = session.get(JOURNEY_KEY)
    if not base:
        base = session[JOURNEY_KEY] = secrets.token_hex(12)
    return f"{base}:{surface}"


def record(kind: str, surface: str, article: Optional[KnowledgeArticle]) -> bool:
    """Count a self-served journey once; return False when this journey was already counted."""
    journey = journey_id(surface)
    exists = db.session.scalar(select(SelfServiceEvent.id).where(
        SelfServiceEvent.journey == journey, SelfServiceEvent.kind == kind))
    if exists:
        return False
    try:
        with db.session.begin_nested():  # two tabs of one journey at once: the unique key decides
            db.session.add(SelfServiceEvent(journey=journey, kind=kind, surface=surface,
                                            article_id=getattr(article, "id", None),
                                            service_id=getattr(article, "service_id", None)))
    except IntegrityError:
        return False
    return True


def journeys_by_month(start: datetime, end: datetime, boundaries) -> dict[str, int]:
    """Return self-served journeys per report period label, given the report's (label, start) boundaries."""
    counts: dict[str, int] = defaultdict(int)
    times = db.session.scalars(select(SelfServiceEvent.occurred_at).where(
        SelfServiceEvent.occurred_at >= start, SelfServiceEvent.occurred_at < end))
    starts = [(label, at) for label, at in boundaries]
    for at in times:
        label = None
        for candidate, begins in starts:
            if at >= begins:
                label = candidate
        if label is not None:
            counts[label] += 1
    return counts


def summary(start: datetime, end: datetime) -> dict:
    """Return self-served journeys in [start, end) by kind and by surface, and the articles behind them."""
    rows = db.session.execute(select(SelfServiceEvent.kind, SelfServiceEvent.surface, func.count())
                              .where(SelfServiceEvent.occurred_at >= start, SelfServiceEvent.occurred_at < end)
                              .group_by(SelfServiceEvent.kind, SelfServiceEvent.surface))
    by_kind: dict[str, int] = defaultdict(int)
    by_surface: dict[str, int] = defaultdict(int)
    for kind, surface, count in rows:
        by_kind[kind] += count
        by_surface[surface] += count
    top = db.session.execute(select(KnowledgeArticle.title, KnowledgeArticle.slug, func.count())
                             .join(SelfServiceEvent, SelfServiceEvent.article_id == KnowledgeArticle.id)
                             .where(SelfServiceEvent.occurred_at >= start, SelfServiceEvent.occurred_at < end)
                             .group_by(KnowledgeArticle.id, KnowledgeArticle.title, KnowledgeArticle.slug)
                             .order_by(func.count().desc()).limit(10))
    return {"journeys": sum(by_kind.values()), "by_kind": dict(by_kind), "by_surface": dict(by_surface),
            "top_articles": [{"title": t, "slug": s, "journeys": n} for t, s, n in top]}
