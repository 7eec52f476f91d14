"""The Open311 channel's adapter in the channel registry: reporting apps post requests and read their status."""
from ..channels.registry import Channel


class Open311Channel(Channel):
    """Open311 GeoReport v2: apps pull a request's status; the council cannot push to their users."""

    name = "open311"

    def register(self, app, api) -> None:
        """Register the GeoReport v2 endpoints."""
        from config import fill_from_environment

        from . import views  # noqa: PLC0415  (routes attach on import)

        fill_from_environment(app.config, views.DEFAULTS)
        app.register_blueprint(views.bp)


channel = Open311Channel()
