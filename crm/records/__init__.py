"""Information governance: subject access, erasure, legal holds, retention and the audit trail.

Services (`subject_access`, `erasure`, `holds`, `retention`, `audit_trail`) never commit; the
pages, API and commands commit at the edge. Only the records role runs the actions.
"""
from flask import Blueprint

bp = Blueprint("records", __name__, url_prefix="/records")


def register(app, api):
    """Register the records pages, API, commands, daily retention job and the audit-entry guard."""
    from . import cli, jobs, views  # noqa: F401  (routes, commands and the periodic job attach on import)
    from .api import BLUEPRINTS
    from .audit_trail import install_guard
    from ..auth.roles import RECORDS_OFFICERS
    from ..navigation import add_nav_item

    install_guard()
    app.register_blueprint(bp)
    for blp in BLUEPRINTS:
        api.register_blueprint(blp)
    add_nav_item("Records", "records.home", *RECORDS_OFFICERS)
