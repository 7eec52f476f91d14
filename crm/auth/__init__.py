"""Staff sign-in, API tokens and role checks."""
from flask import Blueprint

bp = Blueprint("auth", __name__)


def register(app, api):
    """Register sign-in pages and the user loaders."""
    from . import access, roles, views  # noqa: F401  (user loaders and routes attach on import)

    app.register_blueprint(bp)
    # Templates name role sets as the code does: current_user.has_role(*roles.FRONT_LINE).
    app.context_processor(lambda: {"roles": roles})
