"""The conversation core every channel feeds: statuses and moves (lifecycle), the actions (service),
who may read and write one (access), and the channel-neutral /api/v1/conversations endpoints (api)."""


def register(app, api):
    """Register the conversation API."""
    from .api import blp  # noqa: PLC0415  (routes attach on import)

    api.register_blueprint(blp)
