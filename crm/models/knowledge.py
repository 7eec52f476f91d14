"""Self-service: help articles with their versions and feedback, service notices, and the
journeys that ended without a contact."""
from datetime import date, datetime
from typing import Optional

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

ARTICLE_AUDIENCES = ("public", "staff")
ARTICLE_STATUSES = ("draft", "published", "archived")
# Where a resident was when a suggestion answered them; "help" is the help pages themselves.
SELF_SERVICE_SURFACES = ("help", "chat", "form", "track")
SELF_SERVICE_KINDS = ("useful", "deflected")


class KnowledgeArticle(db.Model):
    """A help article: public help for residents or staff-only guidance (call scripts)."""

    __tablename__ = "knowledge_articles"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")  # Markdown, rendered through a safe subset
    service_id: Mapped[Optional[int]] = mapped_column(ForeignKey("services.id"), index=True)
    categories: Mapped[str] = mapped_column(String(500), default="")  # category codes, space-separated
    keywords: Mapped[str] = mapped_column(String(500), default="")
    audience: Mapped[str] = mapped_column(String(10), default="public")
    status: Mapped[str] = mapped_column(String(12), default="draft")
    review_on: Mapped[Optional[date]] = mapped_column(Date)
    owner_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    useful_yes: Mapped[int] = mapped_column(Integer, default=0)
    useful_no: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # PostgreSQL's full-text vector (weighted title/keywords, summary, body), kept by the service
    # on save; SQLite searches its FTS5 table knowledge_search instead and leaves this empty.
    search_vector = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"), nullable=True)
    # The same for title, keywords and summary alone: small enough to rank without reading the body.
    search_head = mapped_column(Text().with_variant(TSVECTOR(), "postgresql"), nullable=True)

    service = relationship("Service")
    owner = relationship("User")
    versions = relationship("ArticleVersion", back_populates="article", order_by="ArticleVersion.version.desc()")

    __table_args__ = (
        # fastupdate off: articles change rarely and a search must not scan GIN's pending list.
        Index("ix_knowledge_articles_search_vector", "search_vector", postgresql_using="gin",
              postgresql_with={"fastupdate": "off"}),
        Index("ix_knowledge_articles_search_head", "search_head", postgresql_using="gin",
              postgresql_with={"fastupdate": "off"}),
        Index("ix_knowledge_articles_status_audience", "status", "audience"),
    )

    def category_codes(self) -> list[str]:
        return [c for c in (self.categories or "").split() if c]


class ArticleVersion(db.Model):
    """One saved state of an article, with who saved it and what changed."""

    __tablename__ = "knowledge_article_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("knowledge_articles.id"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    categories: Mapped[str] = mapped_column(String(500), default="")
    keywords: Mapped[str] = mapped_column(String(500), default="")
    audience: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12))
    service_id: Mapped[Optional[int]] = mapped_column(ForeignKey("services.id"))
    changed: Mapped[str] = mapped_column(String(300), default="")  # the fields this version changed
    note: Mapped[Optional[str]] = mapped_column(String(300))
    edited_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    edited_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    article = relationship("KnowledgeArticle", back_populates="versions")
    edited_by = relationship("User")

    __table_args__ = (UniqueConstraint("article_id", "version"),)


class ArticleFeedback(db.Model):
    """A reader's answer to "Was this page useful?", with why when they said."""

    __tablename__ = "knowledge_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("knowledge_articles.id"))
    useful: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_knowledge_feedback_article", "article_id", "created_at"),)


class ArticleUse(db.Model):
    """An article a member of staff used with a resident: linked in a reply, read out on a call."""

    __tablename__ = "knowledge_article_uses"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("knowledge_articles.id"), index=True)
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    channel: Mapped[str] = mapped_column(String(20))
    contact_id: Mapped[Optional[int]] = mapped_column(ForeignKey("contacts.id"), index=True)
    conversation_id: Mapped[Optional[int]] = mapped_column(ForeignKey("conversations.id"), index=True)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    article = relationship("KnowledgeArticle")


class SelfServiceEvent(db.Model):
    """A resident journey that ended in self-service: an article marked useful, or a chat, form or
    track enquiry abandoned because a suggested article answered it. Counted once per journey."""

    __tablename__ = "self_service_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    journey: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(12))
    surface: Mapped[str] = mapped_column(String(12))
    article_id: Mapped[Optional[int]] = mapped_column(ForeignKey("knowledge_articles.id"), index=True)
    service_id: Mapped[Optional[int]] = mapped_column(ForeignKey("services.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    article = relationship("KnowledgeArticle")

    __table_args__ = (UniqueConstraint("journey", "kind"),)


class ServiceNotice(db.Model):
    """A known problem announced on every channel at once, for a service and an area, while live."""

    __tablename__ = "service_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    message: Mapped[str] = mapped_column(String(500))
    areas: Mapped[str] = mapped_column(String(500), default="")  # postcode districts, space-separated; empty: all
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    service = relationship("Service")
    created_by = relationship("User")

    __table_args__ = (Index("ix_service_notices_live", "ends_at", "starts_at"),)

    def districts(self) -> list[str]:
        return [a for a in (self.areas or "").split() if a]


# Full-text search lives beside the table and is kept by triggers, so every write path (editor,
# erasure, retention, a bulk load) leaves the index right. A batch migration that recreates
# knowledge_articles on SQLite drops its triggers: such a migration must run these again.
SQLITE_SEARCH_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS knowledge_search USING fts5(title, keywords, summary, body, "
    "content='knowledge_articles', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS knowledge_search_ai AFTER INSERT ON knowledge_articles BEGIN "
    "INSERT INTO knowledge_search(rowid, title, keywords, summary, body) "
    "VALUES (new.id, new.title, new.keywords, new.summary, new.body); END",
    "CREATE TRIGGER IF NOT EXISTS knowledge_search_ad AFTER DELETE ON knowledge_articles BEGIN "
    "INSERT INTO knowledge_search(knowledge_search, rowid, title, keywords, summary, body) "
    "VALUES ('delete', old.id, old.title, old.keywords, old.summary, old.body); END",
    "CREATE TRIGGER IF NOT EXISTS knowledge_search_au AFTER UPDATE OF title, keywords, summary, body "
    "ON knowledge_articles BEGIN "
    "INSERT INTO knowledge_search(knowledge_search, rowid, title, keywords, summary, body) "
    "VALUES ('delete', old.id, old.title, old.keywords, old.summary, old.body); "
    "INSERT INTO knowledge_search(rowid, title, keywords, summary, body) "
    "VALUES (new.id, new.title, new.keywords, new.summary, new.body); END",
)
POSTGRESQL_SEARCH_VECTOR = (
    "setweight(to_tsvector('english', coalesce(NEW.title, '') || ' ' || coalesce(NEW.keywords, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(NEW.summary, '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(NEW.body, '')), 'C')"
)
POSTGRESQL_SEARCH_HEAD = (
    "setweight(to_tsvector('english', coalesce(NEW.title, '') || ' ' || coalesce(NEW.keywords, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(NEW.summary, '')), 'B')"
)
POSTGRESQL_SEARCH_DDL = (
    "CREATE OR REPLACE FUNCTION knowledge_articles_search_vector() RETURNS trigger AS $$ BEGIN "
    f"NEW.search_vector := {POSTGRESQL_SEARCH_VECTOR}; NEW.search_head := {POSTGRESQL_SEARCH_HEAD}; "
    "RETURN NEW; END $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS knowledge_articles_search_vector ON knowledge_articles",
    "CREATE TRIGGER knowledge_articles_search_vector BEFORE INSERT OR UPDATE OF title, keywords, summary, body "
    "ON knowledge_articles FOR EACH ROW EXECUTE FUNCTION knowledge_articles_search_vector()",
)


def _install_search(target, connection, **kw):
    """Create the search index's table or trigger when create_all makes knowledge_articles."""
    from sqlalchemy import text

    statements = {"sqlite": SQLITE_SEARCH_DDL, "postgresql": POSTGRESQL_SEARCH_DDL}.get(connection.dialect.name, ())
    for statement in statements:
        connection.execute(text(statement))


def _drop_search(target, connection, **kw):
    """Drop SQLite's search table with knowledge_articles (PostgreSQL drops the trigger itself)."""
    from sqlalchemy import text

    if connection.dialect.name == "sqlite":
        connection.execute(text("DROP TABLE IF EXISTS knowledge_search"))


from sqlalchemy import event  # noqa: E402

event.listen(KnowledgeArticle.__table__, "after_create", _install_search)
event.listen(KnowledgeArticle.__table__, "after_drop", _drop_search)


def include_in_schema_comparison(obj, name, type_, reflected, compare_to) -> bool:
    """Leave SQLite's full-text tables out of Alembic's model comparison: they are not models."""
    return not (type_ == "table" and reflected and compare_to is None and (name or "").startswith("knowledge_search"))
