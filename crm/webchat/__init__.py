"""Live webchat: the resident chat page and widget, the agent console, and their Socket.IO events."""
from flask import Blueprint

bp = Blueprint("webchat", __name__)


def register(app, api):
    """Register webchat's pages, settings and Socket.IO handlers on the app."""
    # The events modules register their handlers on import.
    from . import settings, views, resident_events, agent_events, push  # noqa: F401
    from ..auth.roles import CHAT_STAFF
    from ..navigation import add_nav_item

    settings.init_app(app)
    app.register_blueprint(bp)
    push.connect_signals()
    add_nav_item("Webchat", "webchat.console", *CHAT_STAFF)
