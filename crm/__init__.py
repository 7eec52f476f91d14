"""The council contact-centre CRM: create_app builds the Flask application."""
import logging
import os
import warnings

from flask import Flask

from config import Config

# engineio imports eventlet, which warns that it is in maintenance mode; DESIGN.md says why we keep it.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


def socketio_channel(queue_url) -> str:
    """Name the Socket.IO pub/sub channel after the Redis database in the URL.

    Redis pub/sub ignores the database number: without this, two deployments (or a test run
    and a benchmark) on one Redis server with different REDIS_URL databases would deliver each
    other's events into rooms of the same name.
    """
    from urllib.parse import urlparse

    database = urlparse(queue_url).path.strip("/") if queue_url else ""
    return f"crm-socketio:{database or '0'}"


def database_url(url: str) -> str:
    """Accept the PostgreSQL URL forms hosts hand out (postgres://, postgresql://) with our installed driver."""
    from importlib.util import find_spec

    scheme, sep, rest = (url or "").partition("://")
    if sep and scheme in ("postgres", "postgresql"):
        driver = "psycopg" if find_spec("psycopg") else "psycopg2"
        return f"postgresql+{driver}://{rest}"
    return url


def areas(channels=None):
    """Return every area of the app in registration order, each with register(app, api).

    The channels (phone, email, webchat, ...) are not listed here: they come from the channel registry
    (crm/channels/registry.py), or from `channels` (module names, an app's CHANNELS setting) when given.
    """
    from importlib import import_module

    from .channels import registry

    def named(*names):
        return [import_module(f"{__name__}.{name}") for name in names]

    # Order matters only for the console navigation, which lists links as areas add them.
    return [*named("auth", "api", "console", "admin", "cases"), *registry.load(channels),
            *named("portal", "supervisor", "conversations", "records", "knowledge")]


def create_app(config=None):
    """Create and configure an app; `config` is a class or mapping overriding Config."""
    app = Flask(__name__, template_folder="../templates", static_folder="../static",
                instance_path=os.path.join(os.path.dirname(os.path.dirname(__file__)), "instance"))
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    os.makedirs(app.instance_path, exist_ok=True)
    from .sessions_cookie import KeptSignerSessionInterface

    app.session_interface = KeptSignerSessionInterface()  # Flask's cookie sessions, signer kept across socket events
    from config import DEV_SECRET_KEY, SettingError, refuse_unreadable_settings

    refuse_unreadable_settings()  # SMTP_PORT=abc stops the start here, naming the variable

    if app.config["SECRET_KEY"] in (DEV_SECRET_KEY, None, "") and not (app.debug or app.testing):
        raise RuntimeError("SECRET_KEY is the public development key: set SECRET_KEY or let "
                           "instance/secret_key be created (make run does it)")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    level = app.config.get("LOG_LEVEL", "INFO")
    if level not in logging.getLevelNamesMapping():
        raise SettingError(f"LOG_LEVEL={level!r}: expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    logging.getLogger("crm").setLevel(level)

    from . import models  # noqa: F401  (every table known before migrate/create_all)
    from .extensions import api, csrf, db, limiter, login_manager, migrate, socketio
    from . import signals

    db.init_app(app)
    # batch mode: SQLite cannot ALTER much; an absolute directory so `crm db upgrade` works from anywhere.
    migrate.init_app(app, db, render_as_batch=True,
                     directory=os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations"))
    signals.install(db.session)
    from .customers import identity

    identity.install(db.session)  # customers' name search terms follow their names at flush
    from .auth import sessions

    sessions.install(db.session)  # ended sessions and revoked tokens close their live sockets
    from . import outbox

    outbox.install(db.session)  # after-commit work owed by a change is relayed once it commits
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    limiter.init_app(app)

    from . import http_errors

    http_errors.init_app(app)
    from . import audit

    audit.init_app(app)  # commits audited reads, so GET handlers never commit
    from . import security

    security.init_app(app)  # before any blueprint: its <int:> converter must be in place when routes compile
    from . import db_retry

    db_retry.init_app(app)  # before Socket.IO wraps wsgi_app: only HTTP requests are retried
    # The JSON API first, so each area's register() can add its smorest blueprints to it.
    api.init_app(app)
    for area in areas(app.config.get("CHANNELS")):
        area.register(app, api)
    security.check_rate_limit_settings(app.config)  # once every area has filled in its own
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearer": []}]

    # Socket.IO last: event modules are imported (by the areas' register) before init_app,
    # so every new app, every test's included, has its handlers.
    queue_url = app.config.get("SOCKETIO_MESSAGE_QUEUE") or app.config.get("REDIS_URL")
    channel = app.config.get("SOCKETIO_CHANNEL") or socketio_channel(queue_url)
    manager = None  # given every time: Flask-SocketIO keeps init_app options from app to app
    if queue_url and queue_url.startswith(("redis://", "rediss://")):
        from .realtime import ResilientRedisManager

        manager = ResilientRedisManager(queue_url, channel=channel)  # degrades to local while Redis is away
    socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        message_queue=queue_url,
        channel=channel,
        client_manager=manager,
        cors_allowed_origins=app.config.get("SOCKETIO_CORS_ORIGINS") or [],
    )

    from . import cli, jobs, navigation

    navigation.init_app(app)
    jobs.init_app(app)

    cli.init_app(app)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not response.headers.get("X-Frame-Options") and not getattr(response, "embeddable", False):
            response.headers["X-Frame-Options"] = "SAMEORIGIN"
        return response

    @app.teardown_request
    def rollback_unfinished(exc):
        if exc is not None:
            db.session.rollback()

    return app

