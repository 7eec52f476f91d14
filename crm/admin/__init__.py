"""Administration: staff users and their API tokens."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")


def register(app, api):
    """Register the staff administration pages."""
    from . import views  # noqa: F401  (routes attach to bp on import)
    app.register_blueprint(bp)
