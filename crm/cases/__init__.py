"""Cases: lifecycle, routing and SLA."""


def register(app, api):
    """Register the case pages, case API, CLI commands and SLA jobs."""
    from config import fill_from_environment

    from . import api as cases_api, cli, jobs, lifecycle, sla, views  # noqa: F401  (commands and jobs attach on import)

    sla.init_app(app)
    fill_from_environment(app.config, {"CASE_REOPEN_DAYS": lifecycle.DEFAULT_REOPEN_DAYS})

    app.register_blueprint(views.bp)
    api.register_blueprint(cases_api.blp)
    api.register_blueprint(cases_api.services_blp)
