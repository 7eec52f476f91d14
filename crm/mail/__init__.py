"""Email plumbing around the channel adapter: SMTP listener, file import, API, console pages.

The adapter itself (parse, thread, auto-reply detection, outbound) is crm/channels/email.py.
"""
from flask import Blueprint

bp = Blueprint("email", __name__, url_prefix="/email")


def register(app, api):
    """Register the console pages and the CLI commands of the email channel."""
    from . import cli, views  # noqa: F401  (routes and commands attach on import)
    from ..navigation import add_nav_item

    app.register_blueprint(bp)
    add_nav_item("Email", "email.inbox", "agent", "supervisor")
    add_nav_item("Quarantine", "email.quarantine", "admin")
    from .api import inbound_blp

    api.register_blueprint(inbound_blp)
