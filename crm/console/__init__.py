"""The agent console: find the caller, read the timeline, log the call."""
from flask import Blueprint

bp = Blueprint("console", __name__)


def register(app, api):
    """Register the console pages."""
    from . import identity, sensitivity, views  # noqa: F401  (routes attach to bp on import)
    from ..auth.roles import DUPLICATE_REVIEWERS
    from ..customers.identity import display_phone
    from ..navigation import add_nav_item

    app.register_blueprint(bp)
    app.add_template_filter(display_phone, "uk_phone")
    app.jinja_env.globals["identity_panel"] = identity.identity_panel
    add_nav_item("Possible duplicates", "console.duplicates", *DUPLICATE_REVIEWERS)
