"""Help articles: drafting and publishing with versions, feedback from readers, and staff using
an article with a resident. The service never commits; views, API and CLI do."""
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Iterable, Optional

from sqlalchemy import func, select, update

from ..audit import audit
from ..auth.roles import ARTICLE_EDITORS
from ..errors import Forbidden, NotFound, ValidationFailed
from ..extensions import db
from ..models import (
    ARTICLE_AUDIENCES, ARTICLE_STATUSES, ArticleFeedback, ArticleUse, ArticleVersion, Category, KnowledgeArticle,
    Service, User, utcnow,
)

VERSIONED_FIELDS = ("title", "summary", "body", "categories", "keywords", "audience", "status", "service_id")
MAX_BODY_CHARS = 50_000
MAX_REASON_CHARS = 1_000


@dataclass
class ArticleChanges:
    """What an editor asks to set; None leaves a field as it is."""

    title: Optional[str] = None
    summary: Optional[str] = None
    body: Optional[str] = None
    audience: Optional[str] = None
    status: Optional[str] = None
    service: Optional[str] = None  # a service code; "" clears it
    categories: Optional[list[str]] = None
    keywords: Optional[list[str]] = None
    review_on: Optional[date] = None
    note: Optional[str] = None
    errors: dict = field(default_factory=dict)


def can_edit(user) -> bool:
    """Say whether a member of staff may draft and publish articles."""
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.has_role(*ARTICLE_EDITORS))


def require_editor(user) -> None:
    """Refuse anyone who is not an article editor."""
    if not can_edit(user):
        raise Forbidden("Only article editors may change help articles")


def slugify(title: str) -> str:
    """Return a URL slug made of the title's words."""
    ascii_title = unicodedata.normalize("NFKD", title or "").encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:100] or "article"


def _unique_slug(title: str, article_id: Optional[int] = None) -> str:
    base = slugify(title)
    slug, n = base, 1
    while True:
        holder = db.session.scalar(select(KnowledgeArticle.id).where(KnowledgeArticle.slug == slug))
        if holder is None or holder == article_id:
            return slug
        n += 1
        slug = f"{base}-{n}"


def _words(values: Optional[Iterable[str]]) -> Optional[str]:
    if values is None:
        return None
    return " ".join(dict.fromkeys(v.strip().lower() for v in values if v and v.strip()))[:500]


def _validated(changes: ArticleChanges, article: Optional[KnowledgeArticle]) -> dict:
    """Return the column values the changes set, or raise ValidationFailed naming each bad field."""
    errors: dict = {}
    values: dict = {}
    for name, limit in (("title", 200), ("summary", 500), ("body", MAX_BODY_CHARS)):
        value = getattr(changes, name)
        if value is None:
            continue
        value = value.strip() if name != "body" else value.replace("\r\n", "\n")
        if name == "title" and not value:
            errors["title"] = ["Enter a title"]
        elif len(value) > limit:
            errors[name] = [f"must be {limit} characters or fewer"]
        values[name] = value
    if article is None and "title" not in values:
        errors["title"] = ["Enter a title"]
    if changes.audience is not None:
        if changes.audience not in ARTICLE_AUDIENCES:
            errors["audience"] = [f"must be one of {', '.join(ARTICLE_AUDIENCES)}"]
        values["audience"] = changes.audience
    if changes.status is not None:
        if changes.status not in ARTICLE_STATUSES:
            errors["status"] = [f"must be one of {', '.join(ARTICLE_STATUSES)}"]
        values["status"] = changes.status
    if changes.service is not None:
        if changes.service == "":
            values["service_id"] = None
        else:
            service = db.session.scalar(select(Service).where(Service.code == changes.service))
            if service is None:
                errors["service"] = [f"no service {changes.service}"]
            else:
                values["service_id"] = service.id
    if changes.categories is not None:
        codes = _words(changes.categories)
        known = set(db.session.scalars(select(Category.code).where(Category.code.in_(codes.split())))) if codes else set()
        unknown = [c for c in (codes or "").split() if c not in known]
        if unknown:
            errors["categories"] = [f"unknown categories: {', '.join(unknown)}"]
        values["categories"] = codes
    if changes.keywords is not None:
        values["keywords"] = _words(changes.keywords)
    if changes.review_on is not None:
        values["review_on"] = changes.review_on
    if errors:
        raise ValidationFailed("Check the article", errors)
    return values


def create_article(actor: User, changes: ArticleChanges) -> KnowledgeArticle:
    """Draft (or publish at once) a new article; its first version is recorded."""
    require_editor(actor)
    values = _validated(changes, None)
    values.setdefault("status", "draft")
    values.setdefault("audience", "public")
    article = KnowledgeArticle(slug=_unique_slug(values["title"]), owner_id=actor.id, version=1, **values)
    if article.status == "published":
        article.published_at = utcnow()
    db.session.add(article)
    db.session.flush()
    _record_version(article, actor, changed=[f for f in VERSIONED_FIELDS if values.get(f) not in (None, "")],
                    note=changes.note)
    audit(actor, "article.create", "article", article.id, title=article.title, status=article.status)
    return article


def update_article(actor: User, article: KnowledgeArticle, changes: ArticleChanges) -> KnowledgeArticle:
    """Change an article; a new version records who changed which fields (nothing changed: no version)."""
    require_editor(actor)
    values = _validated(changes, article)
    changed = [name for name, value in values.items() if getattr(article, name) != value]
    if not changed:
        return article
    was_published = article.status == "published"
    for name in changed:
        setattr(article, name, values[name])
    if "title" in changed and article.status != "published" and not was_published:
        article.slug = _unique_slug(article.title, article.id)  # a link once published stays put
    if article.status == "published" and not was_published:
        article.published_at = utcnow()
    article.version += 1
    article.updated_at = utcnow()
    db.session.flush()
    _record_version(article, actor, changed=[c for c in changed if c in VERSIONED_FIELDS or c == "review_on"],
                    note=changes.note)
    audit(actor, "article.update", "article", article.id, version=article.version, changed=changed)
    return article


def _record_version(article: KnowledgeArticle, actor: User, changed: list[str], note: Optional[str]) -> None:
    db.session.add(ArticleVersion(
        article_id=article.id, version=article.version, title=article.title, summary=article.summary or "",
        body=article.body or "", categories=article.categories or "", keywords=article.keywords or "",
        audience=article.audience, status=article.status, service_id=article.service_id,
        changed=" ".join(changed)[:300], note=(note or "").strip()[:300] or None, edited_by_id=actor.id))


def get_article(article_id: int) -> KnowledgeArticle:
    """Return the article or raise NotFound."""
    article = db.session.get(KnowledgeArticle, article_id)
    if article is None:
        raise NotFound(f"No article {article_id}")
    return article


def public_article(slug: str) -> KnowledgeArticle:
    """Return a published public article by its slug; anything else is not found."""
    article = db.session.scalar(select(KnowledgeArticle).where(
        KnowledgeArticle.slug == slug, KnowledgeArticle.status == "published", KnowledgeArticle.audience == "public"))
    if article is None:
        raise NotFound("No such help page")
    return article


def staff_can_read(user, article: KnowledgeArticle) -> bool:
    """Staff read published articles of either audience; drafts and archived ones are for editors."""
    return article.status == "published" or can_edit(user)


def record_feedback(article: KnowledgeArticle, useful: bool, reason: Optional[str]) -> ArticleFeedback:
    """Store a reader's "Was this page useful?" answer and keep the article's tallies."""
    reason = (reason or "").strip()[:MAX_REASON_CHARS] or None
    feedback = ArticleFeedback(article_id=article.id, useful=useful, reason=reason)
    db.session.add(feedback)
    column = KnowledgeArticle.useful_yes if useful else KnowledgeArticle.useful_no
    db.session.execute(update(KnowledgeArticle).where(KnowledgeArticle.id == article.id).values({column: column + 1}))
    return feedback


def record_use(actor: Optional[User], article_ids: Iterable, channel: str, contact_id: Optional[int] = None,
               conversation_id: Optional[int] = None) -> list[ArticleUse]:
    """Record that staff used these published articles with a resident (unknown ids are ignored)."""
    ids = set()
    for raw in article_ids or ():
        try:
            ids.add(int(raw))
        except (TypeError, ValueError):
            continue
    if not ids:
        return []
    known = db.session.scalars(select(KnowledgeArticle.id).where(
        KnowledgeArticle.id.in_(ids), KnowledgeArticle.status == "published"))
    uses = [ArticleUse(article_id=i, user_id=getattr(actor, "id", None), channel=channel, contact_id=contact_id,
                       conversation_id=conversation_id) for i in sorted(known)]
    db.session.add_all(uses)
    return uses


def for_category(category: Optional[str] = None, service_id: Optional[int] = None, audiences=("public", "staff"),
                 limit: int = 6) -> list[KnowledgeArticle]:
    """Return published articles about a reason for contact: its category first, then its service."""
    if category and service_id is None:
        service_id = db.session.scalar(select(Category.service_id).where(Category.code == category))
    query = select(KnowledgeArticle).where(KnowledgeArticle.status == "published",
                                           KnowledgeArticle.audience.in_(list(audiences)))
    found: list[KnowledgeArticle] = []
    if category:
        pattern = f"%{category}%"
        found = [a for a in db.session.scalars(query.where(KnowledgeArticle.categories.like(pattern))
                                               .order_by(KnowledgeArticle.audience.desc(), KnowledgeArticle.title))
                 if category in a.category_codes()]
    if service_id is not None and len(found) < limit:
        seen = {a.id for a in found}
        found += [a for a in db.session.scalars(query.where(KnowledgeArticle.service_id == service_id)
                                                .order_by(KnowledgeArticle.useful_yes.desc(), KnowledgeArticle.title)
                                                .limit(limit)) if a.id not in seen]
    return found[:limit]


def most_useful(limit: int = 6) -> list[KnowledgeArticle]:
    """Return the public articles readers found most useful."""
    return list(db.session.scalars(select(KnowledgeArticle).where(
        KnowledgeArticle.status == "published", KnowledgeArticle.audience == "public")
        .order_by((KnowledgeArticle.useful_yes - KnowledgeArticle.useful_no).desc(), KnowledgeArticle.title)
        .limit(limit)))


def public_counts_by_service() -> list[tuple[Service, int]]:
    """Return each service with its number of public help articles."""
    rows = db.session.execute(select(Service, func.count(KnowledgeArticle.id))
                              .join(KnowledgeArticle, KnowledgeArticle.service_id == Service.id)
                              .where(KnowledgeArticle.status == "published", KnowledgeArticle.audience == "public")
                              .group_by(Service.id).order_by(Service.name))
    return [(service, count) for service, count in rows]


def related_help(service_id: Optional[int] = None, category: Optional[str] = None, limit: int = 5):
    """Return public help for a page's service or category (templates; never fails the page)."""
    if service_id is None and not category:
        return most_useful(limit)
    try:
        return for_category(category, service_id, audiences=("public",), limit=limit)
    except Exception:  # noqa: BLE001 - suggestions must never stop a resident's page
        db.session.rollback()
        return []
