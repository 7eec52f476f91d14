"""Staff pages: the knowledge base (read by all staff, edited by editors), guidance for the console's
panels, and service notices (posted by supervisors)."""
from datetime import date, datetime, timedelta, timezone

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..auth.access import roles_required
from ..auth.roles import ARTICLE_EDITORS, KNOWLEDGE_READERS, NOTICE_POSTERS
from ..errors import DomainError
from ..extensions import db
from ..web import act
from ..models import ARTICLE_AUDIENCES, ARTICLE_STATUSES, ArticleFeedback, KnowledgeArticle, Service, ServiceNotice, utcnow
from ..portal import COUNCIL_TZ
from . import articles, notices, search
from .articles import ArticleChanges
from .markdown import render

bp = Blueprint("knowledge", __name__, url_prefix="/knowledge")
PAGE_SIZE = 50


def _services():
    return list(db.session.scalars(select(Service).where(Service.active.is_(True)).order_by(Service.name)))


@bp.route("/")
@roles_required(*KNOWLEDGE_READERS)
def list_page():
    """Search or browse articles; editors also see drafts and archived ones."""
    query = (request.args.get("q") or "").strip()[:200]
    audience = request.args.get("audience") if request.args.get("audience") in ARTICLE_AUDIENCES else None
    editor = articles.can_edit(current_user)
    status = request.args.get("status") if editor and request.args.get("status") in ARTICLE_STATUSES else None
    statuses = (status,) if status else (ARTICLE_STATUSES if editor else ("published",))
    audiences = (audience,) if audience else ARTICLE_AUDIENCES
    if query:
        items = search.search(query, audiences=audiences, statuses=statuses, limit=PAGE_SIZE)
    else:
        items = list(db.session.scalars(select(KnowledgeArticle).where(
            KnowledgeArticle.status.in_(statuses), KnowledgeArticle.audience.in_(audiences))
            .order_by(KnowledgeArticle.updated_at.desc(), KnowledgeArticle.id.desc()).limit(PAGE_SIZE)))
    due = date.today()
    return render_template("knowledge/list.html", items=items, query=query, audience=audience, status=status,
                           editor=editor, due=due)


@bp.route("/<int:article_id>")
@roles_required(*KNOWLEDGE_READERS)
def article_page(article_id):
    """One article as staff see it, with its versions and what readers said."""
    article = db.session.get(KnowledgeArticle, article_id)
    if article is None or not articles.staff_can_read(current_user, article):
        abort(404)
    reasons = list(db.session.scalars(select(ArticleFeedback).where(
        ArticleFeedback.article_id == article.id, ArticleFeedback.reason.is_not(None))
        .order_by(ArticleFeedback.created_at.desc()).limit(10)))
    return render_template("knowledge/article.html", article=article, body=render(article.body),
                           editor=articles.can_edit(current_user), reasons=reasons)


def _changes_from_form(form) -> ArticleChanges:
    review = (form.get("review_on") or "").strip()
    try:
        review_on = date.fromisoformat(review) if review else None
    except ValueError:
        raise DomainError("Check the article", {"review_on": ["Enter a date like 2027-03-31"]}) from None
    return ArticleChanges(
        title=form.get("title", ""), summary=form.get("summary", ""), body=form.get("body", ""),
        audience=form.get("audience") or "public", status=form.get("status") or "draft",
        service=form.get("service", ""), categories=(form.get("categories") or "").replace(",", " ").split(),
        keywords=(form.get("keywords") or "").replace(",", " ").split(), review_on=review_on,
        note=form.get("note"))


def _edit_again(article, error: DomainError):
    """Show the article form again with what was typed and why it was refused."""
    return render_template("knowledge/edit.html", article=article, values=request.form, errors=error.fields,
                           services=_services()), error.status


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*ARTICLE_EDITORS)
def new_article():
    """Draft a new article."""
    if request.method == "POST":
        return act(lambda: articles.create_article(current_user, _changes_from_form(request.form)),
                   lambda article: f"“{article.title}” saved ({article.status})",
                   lambda article: redirect(url_for("knowledge.article_page", article_id=article.id)),
                   lambda error: _edit_again(None, error))
    return render_template("knowledge/edit.html", article=None, values={"audience": "public", "status": "draft"},
                           errors={}, services=_services())


@bp.route("/<int:article_id>/edit", methods=["GET", "POST"])
@roles_required(*ARTICLE_EDITORS)
def edit_article(article_id):
    """Change an article; saving makes a new version."""
    article = db.get_or_404(KnowledgeArticle, article_id)
    if request.method == "POST":
        return act(lambda: articles.update_article(current_user, article, _changes_from_form(request.form)),
                   lambda _: f"“{article.title}” saved as version {article.version}",
                   lambda _: redirect(url_for("knowledge.article_page", article_id=article.id)),
                   lambda error: _edit_again(article, error))
    values = {"title": article.title, "summary": article.summary, "body": article.body, "audience": article.audience,
              "status": article.status, "service": article.service.code if article.service else "",
              "categories": article.categories, "keywords": article.keywords,
              "review_on": article.review_on.isoformat() if article.review_on else ""}
    return render_template("knowledge/edit.html", article=article, values=values, errors={}, services=_services())


@bp.route("/guidance")
@roles_required(*KNOWLEDGE_READERS)
def guidance():
    """Answer the console's guidance panel: articles for a reason for contact, a service or words typed."""
    category = (request.args.get("category") or "").strip()[:60] or None
    query = (request.args.get("q") or "").strip()[:200]
    service_code = (request.args.get("service") or "").strip()[:40]
    service_id = db.session.scalar(select(Service.id).where(Service.code == service_code)) if service_code else None
    found = articles.for_category(category, service_id) if (category or service_id) else []
    if query and len(found) < 6:
        found += [a for a in search.search(query, audiences=("public", "staff"), limit=6) if a not in found]
    live = notices.live_notices(service_id=service_id) if service_id else []
    return jsonify({
        "items": [{"id": a.id, "title": a.title, "summary": a.summary, "audience": a.audience,
                   "url": url_for("knowledge.article_page", article_id=a.id),
                   "public_url": url_for("help.article", slug=a.slug, _external=True) if a.audience == "public" else None}
                  for a in found[:6]],
        "notices": [{"id": n.id, "service": n.service.name, "message": n.message, "areas": n.areas} for n in live],
    })


@bp.route("/notices", methods=["GET", "POST"])
@roles_required(*KNOWLEDGE_READERS)
def notices_page():
    """Live, coming and ended notices; supervisors post new ones here."""
    if request.method == "POST":
        if not current_user.has_role(*NOTICE_POSTERS):
            abort(403)
        def post():
            ends_at = _local_datetime(request.form.get("ends_on"), request.form.get("ends_time") or "23:59", "ends_at")
            starts_raw = (request.form.get("starts_on") or "").strip()
            starts_at = _local_datetime(starts_raw, request.form.get("starts_time") or "00:00",
                                        "starts_at") if starts_raw else None
            return notices.post_notice(current_user, request.form.get("service"), request.form.get("message"),
                                       ends_at, starts_at, request.form.get("areas"))

        return act(post, lambda notice: f"Notice posted for {notice.service.name}",
                   lambda _: redirect(url_for("knowledge.notices_page")),
                   lambda error: _notices(error.fields, request.form, error.status))
    return _notices({}, {}, 200)


def _notices(errors, values, status):
    """Render the notices page: live, coming and recently ended, with the posting form."""
    now = utcnow()
    recent = list(db.session.scalars(select(ServiceNotice).where(ServiceNotice.ends_at > now - timedelta(days=30))
                                     .order_by(ServiceNotice.starts_at.desc()).limit(100)))
    demand = {row["notice"].id: row["contacts"] for row in notices.notice_demand(now - timedelta(days=30), now)}
    return render_template("knowledge/notices.html", recent=recent, now=now, demand=demand, errors=errors,
                           values=values, services=_services(),
                           poster=current_user.has_role(*NOTICE_POSTERS)), status


@bp.route("/notices/<int:notice_id>/withdraw", methods=["POST"])
@roles_required(*NOTICE_POSTERS)
def withdraw_notice(notice_id):
    """End a notice now."""
    back = lambda _: redirect(url_for("knowledge.notices_page"))  # noqa: E731
    return act(lambda: notices.withdraw_notice(current_user, notice_id), "Notice withdrawn", back, back)


def _local_datetime(day: str, time: str, name: str) -> datetime:
    """Read a council-local date and time from a form as an aware UTC datetime."""
    try:
        local = datetime.combine(date.fromisoformat((day or "").strip()),
                                 datetime.strptime((time or "").strip(), "%H:%M").time())
    except ValueError:
        raise DomainError("Check the notice", {name: ["Enter a date like 2027-03-31 and a time like 17:00"]}) from None
    return local.replace(tzinfo=COUNCIL_TZ).astimezone(timezone.utc)


@bp.route("/uses", methods=["POST"])
@roles_required(*KNOWLEDGE_READERS)
def record_use():
    """Record that the signed-in agent sent an article's link in a chat or email reply."""
    from ..models import Conversation

    data = request.get_json(silent=True) or {}
    conversation_id = data.get("conversation_id")
    if conversation_id is not None and (not isinstance(conversation_id, int) or isinstance(conversation_id, bool)
                                        or db.session.get(Conversation, conversation_id) is None):
        return jsonify({"error": {"code": "not_found", "message": "No such conversation", "fields": {}}}), 404
    channel = data.get("channel") if data.get("channel") in ("chat", "email", "call") else "call"
    uses = articles.record_use(current_user, [data.get("article_id")], {"chat": "webchat", "call": "phone"}.get(
        channel, channel), conversation_id=conversation_id)
    db.session.commit()
    return jsonify({"recorded": len(uses)}), 201
