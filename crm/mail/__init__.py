"""Email plumbing around the channel adapter: SMTP listener, file import, API, console pages.

The adapter itself (parse, thread, auto-reply detection, outbound) is crm/channels/email.py.
"""
from flask import Blueprint

bp = Blueprint("email", __name__, url_prefix="/email")


def register(app):
    """Register the console pages and the CLI commands of the email channel."""
    from . import cli, views  # noqa: F401  (routes and commands attach on import)
    from ..navigation import add_nav_item

    app.register_blueprint(bp)
    add_nav_item("Email", "email.inbox", "agent", "supervisor")
    add_nav_item("Quarantine", "email.quarantine", "admin")


def api_blueprints():
    """Return the smorest blueprints of the email channel."""
    from .api import conversations_blp, inbound_blp

    return [inbound_blp, conversations_blp]
