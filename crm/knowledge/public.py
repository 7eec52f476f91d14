"""Public help at /help/: search, articles by service, "Was this page useful?", suggestions as a
resident types, and "this answered my question" on the way into a contact. Works without JavaScript."""
from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from ..errors import DomainError
from ..extensions import db, limiter
from ..models import SELF_SERVICE_SURFACES, Service
from . import articles, search, selfservice
from .markdown import render
from .notices import safe_live_notices

bp = Blueprint("help", __name__, url_prefix="/help")
SUGGESTIONS = 5
MAX_QUERY_CHARS = 200
SUGGEST_LIMIT = "120 per minute"


def _query() -> str:
    return (request.args.get("q") or "").strip()[:MAX_QUERY_CHARS]


def _service_filter():
    """Return the service the resident narrowed to (?service=code), or None."""
    code = (request.args.get("service") or "").strip()
    return db.session.scalar(select(Service).where(Service.code == code)) if code else None


@bp.route("/")
def index():
    """The help home page: search, services with help, and the pages residents found most useful."""
    return render_template("help/index.html", services=articles.public_counts_by_service(),
                           popular=articles.most_useful(), notices=safe_live_notices())


@bp.route("/search")
def search_page():
    """Ranked results for ?q= (and ?service=), a plain GET form: no JavaScript needed."""
    query = _query()
    service = _service_filter()
    results = search.search(query, service_id=service.id if service else None, limit=20) if query else []
    if not query and service is not None:
        results = articles.for_category(service_id=service.id, audiences=("public",), limit=50)
    return render_template("help/search.html", query=query, service=service, results=results,
                           services=articles.public_counts_by_service())


@bp.route("/suggest")
@limiter.limit(SUGGEST_LIMIT)
def suggest():
    """Answer {"items": [{"title", "url", "summary", "id"}]} for what a resident is typing."""
    query = _query()
    service = _service_filter()
    found = search.search(query, service_id=service.id if service else None, limit=SUGGESTIONS) if query else []
    if service is not None and len(found) < SUGGESTIONS and query:
        found += [a for a in search.search(query, limit=SUGGESTIONS) if a not in found]
    response = jsonify({"items": [{"id": a.id, "slug": a.slug, "title": a.title, "summary": a.summary,
                                   "url": url_for("help.article", slug=a.slug)} for a in found[:SUGGESTIONS]]})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<slug>")
def article(slug):
    """One public article as a GOV.UK page, with "Was this page useful?"."""
    try:
        item = articles.public_article(slug)
    except DomainError:
        return render_template("help/not_found.html"), 404
    related = [a for a in articles.for_category(service_id=item.service_id, audiences=("public",), limit=4)
               if a.id != item.id] if item.service_id else []
    notices = safe_live_notices(service_id=item.service_id) if item.service_id else []
    return render_template("help/article.html", article=item, body=render(item.body), related=related,
                           notices=notices, answered=request.args.get("feedback"))


@bp.route("/<slug>/feedback", methods=["POST"])
@limiter.limit("30 per minute")
def feedback(slug):
    """Take "Was this page useful?": yes counts the journey as self-served; no asks why."""
    try:
        item = articles.public_article(slug)
    except DomainError:
        return render_template("help/not_found.html"), 404
    answer = request.form.get("useful")
    if answer not in ("yes", "no"):
        return redirect(url_for("help.article", slug=slug))
    articles.record_feedback(item, answer == "yes", request.form.get("reason"))
    if answer == "yes":
        selfservice.record("useful", "help", item)
    db.session.commit()
    return redirect(url_for("help.article", slug=slug, feedback=answer) + "#feedback")


@bp.route("/answered", methods=["POST"])
@limiter.limit("30 per minute")
def answered():
    """"This answered my question" from the chat form, a web form or /track: a contact not needed."""
    sent = request.form or request.get_json(silent=True) or {}  # a no-JavaScript form post, or help-suggest.js
    surface, slug = sent.get("surface"), sent.get("article")
    if surface not in SELF_SERVICE_SURFACES:
        surface = "help"
    try:
        item = articles.public_article(str(slug or ""))
    except DomainError:
        item = None
    counted = selfservice.record("deflected", surface, item) if item is not None else False
    db.session.commit()
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return jsonify({"counted": counted})
    return render_template("help/answered.html", article=item)
