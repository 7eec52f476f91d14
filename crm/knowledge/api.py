"""API: search, read, draft and publish help articles; post and list service notices."""
from flask_login import current_user
from sqlalchemy import select

from ..api import api_blueprint
from ..auth.access import roles_required
from ..auth.roles import ARTICLE_EDITORS, KNOWLEDGE_READERS, NOTICE_POSTERS
from ..errors import NotFound
from ..extensions import db
from ..models import Service
from . import articles, notices, search
from .articles import ArticleChanges
from .schemas import (
    ArticleIn, ArticleListArgs, ArticleListOut, ArticleOut, ArticlePatch, NoticeIn, NoticeListArgs,
    NoticeListOut, NoticeOut,
)

blp = api_blueprint("articles_api", __name__, "Help articles: public help and staff guidance", "/articles")
notices_blp = api_blueprint("notices_api", __name__, "Service notices shown on every channel", "/notices")


def _service_id(code):
    if not code:
        return None
    service = db.session.scalar(select(Service).where(Service.code == code))
    if service is None:
        raise NotFound(f"No service {code}", {"service": ["unknown service"]})
    return service.id


@blp.get("")
@roles_required(*KNOWLEDGE_READERS)
@blp.arguments(ArticleListArgs, location="query")
@blp.response(200, ArticleListOut)
def list_articles(args):
    """Search published articles, best first; with no q, the articles of a category or service."""
    audiences = (args["audience"],) if args["audience"] else ("public", "staff")
    service_id = _service_id(args["service"])
    if args["q"].strip():
        items = search.search(args["q"], audiences=audiences, service_id=service_id, limit=args["limit"])
    else:
        items = articles.for_category(args["category"], service_id, audiences=audiences, limit=args["limit"])
    return {"items": items}


@blp.post("")
@roles_required(*ARTICLE_EDITORS)
@blp.arguments(ArticleIn)
@blp.response(201, ArticleOut)
def create(data):
    """Draft or publish an article (editors and admins)."""
    article = articles.create_article(current_user, ArticleChanges(**data))
    db.session.commit()
    return article


@blp.get("/<int:article_id>")
@roles_required(*KNOWLEDGE_READERS)
@blp.response(200, ArticleOut)
def read(article_id):
    """Read an article with its versions (drafts only for editors)."""
    article = articles.get_article(article_id)
    if not articles.staff_can_read(current_user, article):
        raise NotFound(f"No article {article_id}")
    return article


@blp.patch("/<int:article_id>")
@roles_required(*ARTICLE_EDITORS)
@blp.arguments(ArticlePatch)
@blp.response(200, ArticleOut)
def patch(data, article_id):
    """Change, publish or archive an article; each change is a new version."""
    if "service" in data and data["service"] is None:
        data["service"] = ""  # null takes the article off any service
    article = articles.update_article(current_user, articles.get_article(article_id), ArticleChanges(**data))
    db.session.commit()
    return article


@notices_blp.get("")
@roles_required(*KNOWLEDGE_READERS)
@notices_blp.arguments(NoticeListArgs, location="query")
@notices_blp.response(200, NoticeListOut)
def live(args):
    """List the notices live now, for a service and a postcode's district when given."""
    return {"items": notices.live_notices(service_id=_service_id(args["service"]), postcode=args["postcode"])}


@notices_blp.post("")
@roles_required(*NOTICE_POSTERS)
@notices_blp.arguments(NoticeIn)
@notices_blp.response(201, NoticeOut)
def post(data):
    """Post a notice (supervisors and admins); it expires by itself at ends_at."""
    notice = notices.post_notice(current_user, data["service"], data["message"], data["ends_at"],
                                 data["starts_at"], data["areas"])
    db.session.commit()
    return notice


@notices_blp.delete("/<int:notice_id>")
@roles_required(*NOTICE_POSTERS)
@notices_blp.response(200, NoticeOut)
def withdraw(notice_id):
    """End a notice now."""
    notice = notices.withdraw_notice(current_user, notice_id)
    db.session.commit()
    return notice
