"""Open311 GeoReport v2: reporting apps list services, post requests and follow them."""


def register(app, api):
    """Register the GeoReport v2 endpoints."""
    from . import views

    app.register_blueprint(views.bp)
