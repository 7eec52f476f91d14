"""Background jobs on Huey: Redis when REDIS_URL is set, else a SQLite file beside the database.

Tasks run inside an app context (the worker's app, or the request's when run immediately, as
in tests). Declare them with @job() or @periodic_job(crontab) in the area that owns them.
"""
import os
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Optional

from flask import current_app, has_app_context
from huey import RedisHuey, SqliteHuey, crontab  # noqa: F401  (crontab re-exported for areas)
from huey import signals as huey_signals
from huey.api import Task

from config import BASE_DIR

_gathered: ContextVar[Optional[list]] = ContextVar("gathered_jobs", default=None)


class RedisQueue(RedisHuey):
    """Huey on Redis that can hand a group of jobs over in one round trip (see `queued_together`)."""

    def enqueue(self, task):
        gathered = _gathered.get()
        if gathered is None or self.immediate or not isinstance(task, Task):
            return super().enqueue(task)
        gathered.append(task)
        return None  # a gathered job's caller does not wait for its result

    def enqueue_all(self, tasks: list) -> None:
        """Queue the tasks as `enqueue` would, with one pipelined round trip for all of them."""
        pipe = self.storage.conn.pipeline(transaction=False)
        for task in tasks:
            if task.expires:
                task.resolve_expires(self.utc)
            self._emit(huey_signals.SIGNAL_ENQUEUED, task)
            pipe.lpush(self.storage.queue_key, self.serialize_task(task))
        pipe.execute()


@contextmanager
def queued_together():
    """Jobs queued inside the block reach Redis together when it ends (an import batch's acknowledgements: one round trip).

    Elsewhere (the SQLite queue, jobs run immediately in tests) each job is queued as it comes.
    Raises at the end of the block if Redis refused them.
    """
    if not isinstance(huey, RedisQueue) or _gathered.get() is not None:
        yield
        return
    gathered = []
    token = _gathered.set(gathered)
    try:
        yield
    finally:
        _gathered.reset(token)
        if gathered:  # also when the block failed part-way: what it queued before is still owed
            huey.enqueue_all(gathered)


def _make_huey():
    url = os.environ.get("REDIS_URL")
    if url:
        from redis import ConnectionPool

        # Short timeouts: a Redis that is down or paused fails an enqueue in seconds, never hangs it
        # (the outbox runs what could not be enqueued). Reads outlast the consumer's 1 s blocking pop.
        pool = ConnectionPool.from_url(url, socket_connect_timeout=1, socket_timeout=5, health_check_interval=30)
        return RedisQueue("crm", connection_pool=pool)
    # CRM_JOBS_FILE: another SQLite queue file, so a test's server and worker share one of their own.
    filename = os.environ.get("CRM_JOBS_FILE") or str(BASE_DIR / "instance" / "jobs.sqlite3")
    os.makedirs(os.path.dirname(filename), exist_ok=True)
    return SqliteHuey("crm", filename=filename)


huey = _make_huey()
_worker_app = None
# Job functions by name, so the outbox can run a job from its stored name (crm/outbox.py).
_functions = {}


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
        runner = _in_app_context(fn)
        wrapper = huey.task(**options)(runner)
        wrapper.outbox_name = f"{fn.__module__}.{fn.__name__}"
        _functions[wrapper.outbox_name] = runner
        return wrapper
    return decorator


def job_name(task) -> str:
    """Return the stored name of a job declared with @job() (or the name itself)."""
    return task if isinstance(task, str) else task.outbox_name


def job_function(name: str):
    """Return the plain function of a job by its stored name (KeyError when unknown)."""
    return _functions[name]


def periodic_job(schedule, **options):
    """Declare a task the worker runs on a crontab schedule."""
    def decorator(fn):
        return huey.periodic_task(schedule, **options)(_in_app_context(fn))
    return decorator


def registered_jobs() -> set[str]:
    """Return the names of the jobs this process's queue knows (what a worker here can run)."""
    return set(huey._registry._registry)


def app_config(name, default=None):
    """Read a config value from whichever app the task runs under."""
    return current_app.config.get(name, default)
