"""Staff sign-in, API tokens and role checks."""
from flask import Blueprint

bp = Blueprint("auth", __name__)

from . import views  # noqa: E402,F401  (routes register on bp)


def register(app, api):
    """Register sign-in pages and the user loaders."""
    from . import access  # noqa: F401  (user loaders attach to login_manager on import)

    app.register_blueprint(bp)
