"""Journeys that ended in self-service, counted once per journey so channel shift is measured.

A journey is one resident's visit to one surface (the help pages, the chat form, a web form,
/track): a random id kept in their session, with the surface. It counts when they mark an article
useful, or say a suggested article answered their question and leave without contacting us.
"""
import secrets
from typing import Optional

from flask import session
from sqlalchemy import select
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
