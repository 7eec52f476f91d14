"""Self-service: the knowledge base (public help at /help/, staff guidance in the console), service
notices shown on every channel, and the journeys that ended without a contact."""


def register(app, api):
    """Register the help pages, the staff knowledge pages, their API and the template helpers."""
    from ..navigation import add_nav_item
    from ..auth.roles import KNOWLEDGE_READERS, NOTICE_POSTERS
    from . import api as knowledge_api, public, views
    from .articles import related_help
    from .notices import safe_live_notices

    app.register_blueprint(public.bp)
    app.register_blueprint(views.bp)
    api.register_blueprint(knowledge_api.blp)
    api.register_blueprint(knowledge_api.notices_blp)
    app.jinja_env.globals["service_notices"] = safe_live_notices
    app.jinja_env.globals["related_help"] = related_help
    add_nav_item("Knowledge", "knowledge.list_page", *KNOWLEDGE_READERS)
    add_nav_item("Notices", "knowledge.notices_page", *NOTICE_POSTERS)
