"""Session cookies keep Flask's security while the signer is kept: tampered, expired and old-key cookies
sign no one in, and a socket event uses the session copied at connect without reading the cookie."""
from flask import session
from itsdangerous import TimestampSigner

from crm.sessions_cookie import KeptSignerSessionInterface


def _signed_in_with(app, cookie) -> bool:
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other.get("/api/v1/services").status_code == 200


def _tampered(cookie: str) -> str:
    payload, _, signature = cookie.rpartition(".")
    return f"{payload}.{signature[:-2]}{'AA' if not signature.endswith('AA') else 'BB'}"


def test_the_app_keeps_one_signer_while_its_secret_key_stays_the_same(app):
    interface = app.session_interface
    assert isinstance(interface, KeptSignerSessionInterface)
    assert interface.get_signing_serializer(app) is interface.get_signing_serializer(app)


def test_a_signed_in_cookie_still_works_on_the_next_request(app, agent_client):
    assert _signed_in_with(app, agent_client.get_cookie("session").value)


def test_a_tampered_cookie_signs_no_one_in(app, agent_client):
    cookie = agent_client.get_cookie("session").value
    assert not _signed_in_with(app, _tampered(cookie))


def test_an_expired_cookie_signs_no_one_in(app, agent_client, monkeypatch):
    cookie = agent_client.get_cookie("session").value
    real_timestamp = TimestampSigner.get_timestamp
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real_timestamp(self) + lifetime + 60)
    assert not _signed_in_with(app, cookie)


def test_a_new_secret_key_ends_old_cookies_unless_the_old_key_is_a_fallback(app, agent_client, monkeypatch):
    cookie = agent_client.get_cookie("session").value
    before = app.session_interface.get_signing_serializer(app)
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [app.secret_key])
    monkeypatch.setattr(app, "secret_key", "a-new-key-for-this-test")
    assert app.session_interface.get_signing_serializer(app) is not before
    assert _signed_in_with(app, cookie)
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [])
    assert not _signed_in_with(app, cookie)


def test_a_socket_event_uses_the_session_copied_at_connect_without_reading_the_cookie(app):
    copied_at_connect = {"resident": {"id": 7}}
    from flask_socketio import _ManagedSession

    held = _ManagedSession(copied_at_connect)
    with app.test_request_context("/socket.io/", headers={"Cookie": "session=not-even-signed"},
                                  environ_overrides={"saved_session": held}):
        assert session._get_current_object() is held


def test_an_unsigned_cookie_gives_an_empty_session_on_an_ordinary_request(app):
    with app.test_request_context("/", headers={"Cookie": "session=not-even-signed"}):
        assert dict(session) == {}
