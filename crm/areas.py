"""The areas built on the foundation; each area adds its own lines here."""


def register(app):
    """Register each area's web blueprints (and so import its Socket.IO events) on the app."""
    from .cases import cli as _case_cli, jobs as _case_jobs, views as case_views  # noqa: F401
    from .open311 import views as open311_views

    app.register_blueprint(case_views.bp)
    app.register_blueprint(open311_views.bp)
    from . import webchat

    webchat.register(app)
    from . import portal

    portal.init_app(app)
    from . import supervisor

    supervisor.register(app)
    from . import mail

    mail.register(app)


def api_blueprints():
    """Return each area's flask-smorest blueprints for /api/v1."""
    from .cases import api as cases_api

    from . import mail

    from . import supervisor

    return [cases_api.blp, cases_api.services_blp, *mail.api_blueprints(), *supervisor.api_blueprints()]
