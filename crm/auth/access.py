"""Role checks for views, API endpoints and Socket.IO handlers."""
from functools import wraps

from flask import abort, request
from flask_login import current_user

from ..extensions import db, login_manager
from ..models import User
from .roles import CONSOLE_STAFF


@login_manager.user_loader
def load_user(user_id):
    """Return the signed-in user from the session, unless the request brings a bearer token."""
    if bearer_request():
        return None  # a request that presents a token is judged by the token alone
    from .sessions import split_session_id

    uid, stamp = split_session_id(user_id)
    user = db.session.get(User, uid) if uid is not None else None
    # A session signed in before the user's last sign-out, password or role change has ended.
    return user if user and user.active and stamp == user.session_stamp else None


@login_manager.request_loader
def load_user_from_bearer(req):
    """Authenticate API calls that carry Authorization: Bearer TOKEN."""
    from .accounts import user_for_token

    header = req.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return user_for_token(header[7:].strip())
    return None


def bearer_request() -> bool:
    """Say whether this request authenticates with a bearer token rather than the session."""
    return request.headers.get("Authorization", "")[:7].lower() == "bearer "


def roles_required(*roles):
    """Let a view through only for signed-in staff holding one of the roles (admins always)."""
    allowed = roles or CONSOLE_STAFF

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(*allowed):
                abort(403)
            return view(*args, **kwargs)

        wrapped.allowed_roles = allowed
        return wrapped

    return decorator


@login_manager.unauthorized_handler
def unauthorized():
    """Answer 401 in JSON to API calls; send people to the sign-in page."""
    from flask import redirect, url_for

    from ..http_errors import error_response, wants_json

    if wants_json():
        return error_response(401, "Sign in or send Authorization: Bearer TOKEN")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
