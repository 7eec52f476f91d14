"""Background jobs on Huey: Redis when REDIS_URL is set, else a SQLite file beside the database.

Tasks run inside an app context (the worker's app, or the request's when run immediately, as
in tests). Declare them with @job() or @periodic_job(crontab) in the area that owns them.
"""
import os
from functools import wraps

from flask import current_app, has_app_context
from huey import RedisHuey, SqliteHuey, crontab  # noqa: F401  (crontab re-exported for areas)

from config import BASE_DIR


def _make_huey():
    url = os.environ.get("REDIS_URL")
    if url:
        return RedisHuey("crm", url=url)
    os.makedirs(BASE_DIR / "instance", exist_ok=True)
    return SqliteHuey("crm", filename=str(BASE_DIR / "instance" / "jobs.sqlite3"))


huey = _make_huey()
_worker_app = None


def init_app(app):
    """Bind the app tasks run under; JOBS_IMMEDIATE runs them in-process at once (tests)."""
    global _worker_app
    _worker_app = app
    huey.immediate = bool(app.config.get("JOBS_IMMEDIATE", False))


def _in_app_context(fn):
    @wraps(fn)
    def run(*args, **kwargs):
        if has_app_context():
            return fn(*args, **kwargs)
        with _worker_app.app_context():
            return fn(*args, **kwargs)
    return run


def job(**options):
    """Declare a background task (options as huey.task: retries, retry_delay, ...)."""
    def decorator(fn):
        return huey.task(**options)(_in_app_context(fn))
    return decorator


def periodic_job(schedule, **options):
    """Declare a task the worker runs on a crontab schedule."""
    def decorator(fn):
        return huey.periodic_task(schedule, **options)(_in_app_context(fn))
    return decorator


def app_config(name, default=None):
    """Read a config value from whichever app the task runs under."""
    return current_app.config.get(name, default)
