"""Supervisors: the live queue dashboard, the actions that run a shift, and the reports."""
from flask import Blueprint

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")


def register(app, api):
    """Register the supervisor pages, the /supervisor namespace and the figure pushes."""
    from . import cli, events, push, rollup, views  # noqa: F401  (events and cli attach on import)
    from ..auth.roles import SUPERVISORS
    from ..navigation import add_nav_item

    from config import fill_from_environment

    # Seconds between pushes while someone watches, so waits and SLA clocks move without events.
    fill_from_environment(app.config, {"SUPERVISOR_REFRESH_SECONDS": 30.0})
    app.register_blueprint(bp)
    push.init_app(app)
    rollup.install_session_hooks()
    app.jinja_env.globals["supervisor_banners"] = views.banners_for_page
    app.jinja_env.globals["public_banners"] = views.public_banners_for_page
    add_nav_item("Dashboard", "supervisor.dashboard", *SUPERVISORS)
    add_nav_item("Reports", "supervisor.report_page", *SUPERVISORS)
    from .api import BLUEPRINTS

    for blp in BLUEPRINTS:
        api.register_blueprint(blp)
