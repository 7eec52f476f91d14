"""Flask's signed-cookie sessions, without the work Flask-SocketIO's per-event request contexts repeat."""
from flask.sessions import SecureCookieSessionInterface


class KeptSignerSessionInterface(SecureCookieSessionInterface):
    """Sessions in signed cookies exactly as Flask keeps them, with the signer built once per secret key.

    Flask builds itsdangerous' serializer anew whenever a request context is pushed, and Flask-SocketIO
    pushes one for every socket event; the same keys and salt make the same serializer, so one is kept.
    """

    def __init__(self):
        self._kept = (None, None)  # (the keys it was built with, the serializer)

    def get_signing_serializer(self, app):
        """Return the serializer for the app's current secret key and fallbacks, built once per change of them."""
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        kept_keys, serializer = self._kept
        if kept_keys != keys:
            serializer = super().get_signing_serializer(app)
            self._kept = (keys, serializer)
        return serializer

    def open_session(self, app, request):
        """Open the cookie's session, except on a socket event that already holds the copy taken at connect."""
        # Flask-SocketIO (manage_session) puts that copy in place of whatever is opened here: reading,
        # verifying and decoding the cookie again for every event would be thrown away.
        held = request.environ.get("saved_session")
        if held is not None:
            return held
        return super().open_session(app, request)
