"""Configuration from the environment; a .env file is read when present."""
import os
from pathlib import Path
from zoneinfo import ZoneInfo

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")


YES_WORDS = frozenset({"1", "true", "yes", "on"})
NO_WORDS = frozenset({"0", "false", "no", "off"})


def _bool(name, default=False):
    """Read an old-style switch: any word but a yes word means no."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in YES_WORDS


class SettingError(ValueError):
    """A setting that cannot work; the message names the variable. Entry points print it instead of a traceback."""


def _typed(name: str, raw: str, default):
    """Read an environment value as the type of its default; say which variable is wrong if it is not one."""
    kind = type(default)
    try:
        if kind is bool:
            if raw.strip().lower() not in YES_WORDS | NO_WORDS:
                raise ValueError
            return raw.strip().lower() in YES_WORDS
        return kind(raw.strip()) if kind in (int, float) else raw
    except ValueError:
        words = {bool: "yes or no", int: "a whole number", float: "a number"}
        raise SettingError(f"{name}={raw!r}: expected {words[kind]}") from None


_unreadable: list = []  # this module's settings whose environment value could not be read: create_app refuses to start


def check_time_zone(name: str, value) -> None:
    """Refuse a setting that names no time zone, naming the variable."""
    try:
        ZoneInfo(value)
    except (ValueError, KeyError, TypeError):  # ZoneInfoNotFoundError is a KeyError
        raise SettingError(f"{name}={value!r}: expected a time zone such as Europe/London") from None


def environment_value(name: str, default):
    """Return the environment variable read as the type of the default (the default when unset or empty)."""
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else _typed(name, raw, default)


def _number(name: str, default):
    """Read a number setting of this module; a value that is not one is reported when the app is created."""
    try:
        return environment_value(name, default)
    except SettingError as error:
        _unreadable.append(str(error))
        return default


def refuse_unreadable_settings() -> None:
    """Raise SettingError naming every variable of this module that could not be read."""
    if _unreadable:
        raise SettingError("; ".join(_unreadable))


def fill_from_environment(settings, defaults: dict) -> None:
    """Give each setting the app's config lacks the environment variable of the same name, else its default.

    An area keeps its own defaults (cases, webchat, portal, Open311) and calls this from its init, so every
    setting the README names can be set in the environment, as config.py's own are.
    """
    for name, default in defaults.items():
        if name not in settings:  # else given to create_app (tests, a config class) or by config.py
            settings[name] = environment_value(name, default)


DEV_SECRET_KEY = "dev-only-change-me"  # known to everyone: create_app refuses it outside debug and tests


def instance_secret_key(path=BASE_DIR / "instance" / "secret_key"):
    """Return this installation's random key from instance/, making it once when missing."""
    import secrets

    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # two processes: one writes
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
        return path.read_text().strip() or None
    except FileExistsError:
        import time

        time.sleep(0.2)  # another process made it this instant: let it finish writing
        return path.read_text().strip() or None
    except OSError:
        return None  # read-only deployment: SECRET_KEY must come from the environment


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY") or instance_secret_key() or DEV_SECRET_KEY
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{BASE_DIR / 'instance' / 'crm.sqlite3'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL") or None

    # Mail: outbound relay and the domain our Message-IDs and reply addresses use.
    SMTP_HOST = os.environ.get("SMTP_HOST") or "127.0.0.1"
    SMTP_PORT = _number("SMTP_PORT", 25)
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME") or None
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD") or None
    SMTP_STARTTLS = _bool("SMTP_STARTTLS")
    # The CRM's public address: links in mail and widget.js are built from it, never from the Host header.
    CRM_BASE_URL = os.environ.get("CRM_BASE_URL") or (
        f"http://{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT') or '5000'}")
    CRM_MAIL_FROM = os.environ.get("CRM_MAIL_FROM") or "contact@council.example"
    CRM_MAIL_DOMAIN = os.environ.get("CRM_MAIL_DOMAIN") or "council.example"
    SMTP_TIMEOUT = _number("SMTP_TIMEOUT", 30)

    # Email channel (issue 3). Recipients the SMTP listener accepts: whole domains and single
    # addresses (comma-separated); services' own addresses are always accepted.
    EMAIL_ACCEPTED_DOMAINS = [d.strip().lower() for d in (
        os.environ.get("EMAIL_ACCEPTED_DOMAINS") or CRM_MAIL_DOMAIN).split(",") if d.strip()]
    EMAIL_ACCEPTED_ADDRESSES = [a.strip().lower() for a in (
        os.environ.get("EMAIL_ACCEPTED_ADDRESSES") or "").split(",") if a.strip()]
    EMAIL_MAX_BYTES = _number("EMAIL_MAX_BYTES", 25 * 1024 * 1024)
    EMAIL_MAX_ATTACHMENT_BYTES = _number("EMAIL_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024)
    # The council's name, the same on every resident page (header, titles, footer) and in the chat page.
    COUNCIL_NAME = os.environ.get("COUNCIL_NAME") or "Cumbria Council"
    EMAIL_FROM_NAME = os.environ.get("EMAIL_FROM_NAME") or "Council Contact Centre"
    # Working hours within which an email to the council should be answered (the inbox's "reply due").
    EMAIL_REPLY_TARGET_HOURS = _number("EMAIL_REPLY_TARGET_HOURS", 16.0)
    EMAIL_REPLY_ADDRESSES = _bool("EMAIL_REPLY_ADDRESSES", True)  # Reply-To: reply+TOKEN@CRM_MAIL_DOMAIN
    EMAIL_ACK_ENABLED = _bool("EMAIL_ACK_ENABLED", True)
    EMAIL_ACK_PER_SENDER_PER_HOUR = _number("EMAIL_ACK_PER_SENDER_PER_HOUR", 3)
    EMAIL_DEFAULT_SERVICE = os.environ.get("EMAIL_DEFAULT_SERVICE") or "general"
    EMAIL_SEND_ATTEMPTS = _number("EMAIL_SEND_ATTEMPTS", 5)
    CRM_INBOUND_EMAIL_TOKEN = os.environ.get("CRM_INBOUND_EMAIL_TOKEN") or None

    # Realtime: keep the async mode a setting so a move to gevent is one line.
    SOCKETIO_ASYNC_MODE = os.environ.get("SOCKETIO_ASYNC_MODE") or "eventlet"

    # Outbox (crm/outbox.py): the worker runs owed work the queue never got after this grace.
    OUTBOX_RELAY_GRACE_SECONDS = _number("OUTBOX_RELAY_GRACE_SECONDS", 10.0)
    OUTBOX_SWEEP_SECONDS = _number("OUTBOX_SWEEP_SECONDS", 5.0)
    OUTBOX_MAX_ATTEMPTS = _number("OUTBOX_MAX_ATTEMPTS", 8)

    # Sessions: HttpOnly and SameSite always; Secure when served over HTTPS.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE")
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE")
    PERMANENT_SESSION_LIFETIME = 60 * 60 * 10  # one shift

    MAX_CONTENT_LENGTH = _number("MAX_CONTENT_LENGTH", 25 * 1024 * 1024)
    WTF_CSRF_TIME_LIMIT = None  # an agent's console stays open all day

    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or (
        os.environ.get("REDIS_URL") or "memory://"
    )
    RATELIMIT_HEADERS_ENABLED = True
    # Redis away or paused: count in this process's memory instead (never a 500, never a long wait),
    # and go back to Redis when it answers again.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_STORAGE_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    RATELIMIT_SWALLOW_ERRORS = True
    LOGIN_ATTEMPTS_BEFORE_LOCK = 5
    LOGIN_LOCK_MINUTES = 15
    # Resident pages: form posts allowed per client address (Flask-Limiter syntax).
    PORTAL_SUBMIT_LIMIT = os.environ.get("PORTAL_SUBMIT_LIMIT") or "10 per minute;100 per hour"
    PORTAL_STEP_LIMIT = os.environ.get("PORTAL_STEP_LIMIT") or "60 per minute"
    # Mail a resident's action sends (confirmations, sign-in links, transcripts, reopen notices),
    # counted per recipient address and per requesting client address (crm.security).
    RESIDENT_MAIL_PER_RECIPIENT = os.environ.get("RESIDENT_MAIL_PER_RECIPIENT") or "5 per hour;20 per day"
    RESIDENT_MAIL_PER_REQUESTER = os.environ.get("RESIDENT_MAIL_PER_REQUESTER") or "20 per hour;100 per day"
    # How long after a merge of two customer records staff may undo it (crm.customers.merge).
    CUSTOMER_UNMERGE_DAYS = _number("CUSTOMER_UNMERGE_DAYS", 30)

    # OpenAPI document (flask-smorest) served at /api/v1/openapi.json.
    API_TITLE = "Council Contact Centre CRM"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"

    DEMO_PASSWORD = os.environ.get("CRM_DEMO_PASSWORD") or "demo-password-123"
    LOG_LEVEL = (os.environ.get("LOG_LEVEL") or "INFO").upper()  # of the crm.* loggers


class TestConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret"
    CRM_BASE_URL = "http://localhost"  # what Flask's test client calls itself
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    RATELIMIT_STORAGE_URI = "memory://"
    WTF_CSRF_ENABLED = True
    JOBS_IMMEDIATE = True
