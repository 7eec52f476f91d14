"""WSGI entry point: eventlet is patched before anything else is imported."""
import os
import sys
import warnings

# eventlet warns on import that it is in maintenance mode; DESIGN.md records why we keep it.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

# Only the server is green: `flask crm ...`, the worker and the tests import this module unpatched.
SERVING = __name__ == "__main__" and os.environ.get("CRM_NO_MONKEY_PATCH") != "1"

if SERVING:
    import eventlet

    eventlet.monkey_patch()
    # psycopg 3 picks its C wait function, which blocks the whole hub, unless told otherwise:
    # wait_select goes through select.select, which eventlet has made green.
    os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")


def _ready_first_psycopg_waits():
    """Make psycopg's wait_select ask the OS first and wait through the hub only when the socket is not ready.

    Every green select is a trip round the hub, and a pipelined executemany waits once per row (a
    batch of 500 chat starts spent more time there than in the database; bench/README.md).
    """
    import select as green
    from eventlet.patcher import original

    import psycopg.waiting

    os_select = original("select").select

    class ReadyFirst:
        def __getattr__(self, name):
            return getattr(green, name)

        def select(self, rlist, wlist, xlist, timeout=None):
            ready = os_select(rlist, wlist, xlist, 0)
            return ready if any(ready) else green.select(rlist, wlist, xlist, timeout)

    psycopg.waiting.select = ReadyFirst()


if SERVING:
    _ready_first_psycopg_waits()

import gc  # noqa: E402

# Start-up makes some 190,000 long-lived objects (modules, mappers, routes) and little garbage: without
# the collector's automatic passes over them, every command starts about a tenth sooner (bench/README.md).
gc.disable()

from config import SettingError, environment_value  # noqa: E402
from crm import create_app  # noqa: E402
from crm.extensions import socketio  # noqa: E402


def _server_config():
    """Size the database pool for green threads: a fixed number of connections per process.

    Every process must fit under PostgreSQL's max_connections (100 by default) with the
    workers and CLI: two processes at the old 30 + 30 overflow took 120 and failed events
    with "too many clients". With no overflow, a burst waits (greenly) for a free connection
    up to CRM_DB_POOL_TIMEOUT seconds instead. No pre-ping: it is a round trip per event; a
    connection that died is invalidated on its first error and replaced.
    """
    if not SERVING:
        # A command (flask crm ..., flask db ...) serves no sockets: without eventlet's driver it
        # starts faster (Flask-SocketIO imports the whole of eventlet for it; bench/README.md).
        return None if os.environ.get("SOCKETIO_ASYNC_MODE") else {"SOCKETIO_ASYNC_MODE": "threading"}
    from config import Config

    pool = environment_value("CRM_DB_POOL_SIZE", 20)
    return {"SQLALCHEMY_ENGINE_OPTIONS": dict(
        Config.SQLALCHEMY_ENGINE_OPTIONS, pool_size=pool, max_overflow=0, pool_pre_ping=False,
        pool_timeout=environment_value("CRM_DB_POOL_TIMEOUT", 30.0), pool_recycle=1800)}


try:
    app = create_app(_server_config())
except SettingError as error:
    sys.exit(f"crm: {error}")  # a misconfigured start names the variable, without a traceback
finally:
    gc.enable()


def serve():
    """Serve with eventlet on HOST:PORT, printing the URL and the demo logins."""
    import socket

    host = os.environ.get("HOST", "127.0.0.1")
    port = environment_value("PORT", 5000)
    try:
        # No SO_REUSEPORT (eventlet's default): a second server on a port in use must fail, not share it silently.
        listener = eventlet.listen((host, port), backlog=1024, reuse_port=False)
    except OSError as error:
        sys.exit(f"crm: cannot listen on {host}:{port}: {error.strerror}")
    # eventlet leaves Nagle on: a status frame then an ack would wait ~40 ms for a delayed ACK.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print(f"Council CRM serving on http://{host}:{port}/", flush=True)
    print(f"Demo logins (password {app.config['DEMO_PASSWORD']}): admin@council.example, "
          "agent@council.example, supervisor@council.example, highways.officer@council.example", flush=True)
    # The cyclic GC's pauses set chat p99 (DESIGN.md): keep start-up objects out of them, and
    # collect young garbage in small steps. A request here leaves more cyclic garbage than the
    # bare echo's: at a 50,000 threshold each young collection took 60-110 ms every ~5 s under
    # bench/chat_load.py; at 3,000 they take under 10 ms (bench/README.md).
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(environment_value("CRM_GC_YOUNG_THRESHOLD", 3000), 50, 100)
    # debug=False: eventlet would otherwise put a raw traceback in the body of an unhandled 500.
    eventlet.wsgi.server(listener, app, log_output=False, debug=app.debug, max_size=environment_value("CRM_MAX_CONNECTIONS", 10000))


if __name__ == "__main__":
    try:
        serve()
    except SettingError as error:
        sys.exit(f"crm: {error}")
