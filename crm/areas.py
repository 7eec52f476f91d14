"""The areas built on the foundation; each area adds its own lines here."""


def register(app):
    """Register each area's web blueprints (and so import its Socket.IO events) on the app."""


def api_blueprints():
    """Return each area's flask-smorest blueprints for /api/v1."""
    return []
