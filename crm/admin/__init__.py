"""Administration: staff users and their API tokens."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from . import views  # noqa: E402,F401


def register(app, api):
    """Register the staff administration pages."""
    app.register_blueprint(bp)
