"""The agent console: find the caller, read the timeline, log the call."""
from flask import Blueprint

bp = Blueprint("console", __name__)

from . import sensitivity, views  # noqa: E402,F401


def register(app, api):
    """Register the console pages."""
    app.register_blueprint(bp)
