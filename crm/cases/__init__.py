"""Cases: lifecycle, routing and SLA."""


def register(app, api):
    """Register the case pages, case API, CLI commands and SLA jobs."""
    from . import api as cases_api, cli, jobs, views  # noqa: F401  (commands and jobs attach on import)

    app.register_blueprint(views.bp)
    api.register_blueprint(cases_api.blp)
    api.register_blueprint(cases_api.services_blp)
