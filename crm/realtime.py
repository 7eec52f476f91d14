"""Socket.IO across processes through Redis that degrades to this process while Redis is away.

python-socketio's RedisManager already delivers to this process's sockets first, but it
publishes inline (a paused Redis freezes the handler, and the ack with it), drops what it
could not publish, and its listener backs off up to 60 s after an outage. This one publishes
from a queue in a background task with short timeouts (pipelined when several wait), keeps
what could not be published (up to a bound) and sends it when Redis answers again, and
re-subscribes within a second. After the listener was cut off it runs the `resubscribed`
callbacks, so areas re-send what their clients may have missed from other processes.

EventSocketIO (our `socketio`) runs each event after connect in a Flask context without URL routing.
"""
import collections
import threading
import logging
import time

from flask.ctx import RequestContext
from flask_socketio import SocketIO
from socketio.redis_manager import RedisManager

log = logging.getLogger("crm.realtime")

# Callbacks run (each in a background task) when the listener is back after an outage.
resubscribed = []


class ResilientRedisManager(RedisManager):
    """A RedisManager whose publishing never blocks a handler and whose outages end in seconds."""

    name = "crm-redis"

    def __init__(self, url, channel, backlog_limit=20000, retry_seconds=0.5, **kwargs):
        # The listener reads with no timeout (an idle channel is not an error); connects fail fast.
        options = {"socket_connect_timeout": 1, "socket_keepalive": True}
        super().__init__(url, channel=channel, redis_options=options, **kwargs)
        self.backlog = collections.deque()
        self.backlog_limit = backlog_limit
        self.retry_seconds = retry_seconds
        self.dropped = 0
        self._publisher = None
        self._wake = None
        self._publisher_started = False
        self._inline_lock = threading.Lock()

    # ---- publishing ----------------------------------------------------------------------------

    def _publish(self, data):
        """Queue a message for the other processes; the publisher task sends it."""
        if len(self.backlog) >= self.backlog_limit:
            self.backlog.popleft()
            self.dropped += 1  # the listeners' resync after the outage re-reads what this loses
        self.backlog.append(data)
        if self.server is None or getattr(self.server, "async_mode", "eventlet") != "eventlet":
            # A worker or CLI process: no ack waits on it, and the process may end before a task would run.
            with self._inline_lock:
                return self._send_all()
        if not self._publisher_started:
            self._publisher_started = True
            self._wake = self.server.eio.create_event()
            self.server.start_background_task(self._publish_forever)
        self._wake.set()

    def _publisher_client(self):
        if self._publisher is None:
            module = self._get_redis_module()
            self._publisher = module.Redis.from_url(self.redis_url, socket_connect_timeout=1, socket_timeout=2,
                                                    socket_keepalive=True)
        return self._publisher

    def _send_all(self) -> bool:
        """Send the backlog in order, pipelined; say whether it all went."""
        while self.backlog:
            batch = [self.backlog[i] for i in range(min(len(self.backlog), 200))]
            try:
                client = self._publisher_client()
                if len(batch) == 1:
                    client.publish(self.channel, self.json.dumps(batch[0]))
                else:
                    pipe = client.pipeline(transaction=False)
                    for data in batch:
                        pipe.publish(self.channel, self.json.dumps(data))
                    pipe.execute()
            except Exception as error:  # noqa: BLE001 - kept, and sent when Redis answers again
                if self._publisher is not None:
                    try:
                        self._publisher.close()
                    except Exception:  # noqa: BLE001
                        pass
                self._publisher = None
                log.warning("Socket.IO publish to Redis failed (%s); %d kept to send later", error,
                            len(self.backlog))
                return False
            for _ in batch:
                self.backlog.popleft()
        return True

    def _publish_forever(self):
        while True:
            self._wake.wait()
            self._wake.clear()
            while not self._send_all():
                self.server.sleep(self.retry_seconds)
            if self.dropped:
                log.warning("Socket.IO backlog overflowed during a Redis outage: %d messages dropped", self.dropped)
                self.dropped = 0

    # ---- listening -----------------------------------------------------------------------------

    def _redis_listen_with_retries(self):  # pragma: no cover - exercised by the fault tests
        retry_sleep = 0.2
        subscribed = False
        outage = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    self.pubsub.subscribe(self.channel)
                    subscribed = True
                    retry_sleep = 0.2
                    if outage:
                        outage = False
                        log.info("Socket.IO listener back on Redis; resyncing this process's clients")
                        for callback in list(resubscribed):
                            self.server.start_background_task(callback)
                yield from self.pubsub.listen()
            except Exception as error:  # noqa: BLE001 - retried within a second, for ever
                if not outage:
                    log.warning("Socket.IO listener lost Redis (%s); retrying", error)
                outage = True
                subscribed = False
                time.sleep(retry_sleep)
                retry_sleep = min(1.0, retry_sleep * 2)


# ---- one Flask context per socket event, without URL routing ---------------------------------------

class SocketEventContext(RequestContext):
    """Flask's request context for one Socket.IO event after connect: the connection's environ and its session.

    An event is not a request for a URL: nothing is matched against the routes, and the URL adapter
    (for url_for) is built only if something asks for it. Teardowns, the app context and the session
    are Flask's own.
    """

    def __init__(self, app, environ, request=None, session=None):
        # Not super().__init__: it builds the URL adapter at once (and push() would then match it).
        self.app = app
        self.request = request if request is not None else app.request_class(environ)
        self.request.json_module = app.json
        self._url_adapter = None
        self._pushed = False
        self.flashes = None
        self._session = session
        self._after_request_functions = []
        self._cv_tokens = []

    @property
    def url_adapter(self):
        """Return the URL adapter, built on first use once pushed (push() matches any it sees)."""
        if self._url_adapter is None and self._pushed:
            self._url_adapter = self.app.create_url_adapter(self.request)
        return self._url_adapter

    @url_adapter.setter
    def url_adapter(self, value):
        self._url_adapter = value

    def push(self) -> None:
        super().push()
        self._pushed = True


class EventSocketIO(SocketIO):
    """Flask-SocketIO whose events after connect run in a SocketEventContext instead of a full request context.

    Connect still gets Flask's whole request context: it is where the session is copied and the
    cookie or token read. Each later event gets the same request.sid, namespace, event, environ,
    session copy, app context and teardowns, without matching /socket.io/ against every route.
    """

    def _handle_event(self, handler, message, namespace, sid, *args):
        environ = self.server.get_environ(sid, namespace=namespace)
        session = environ.get("saved_session") if environ else None
        if message == "connect" or session is None or not self.manage_session:
            return super()._handle_event(handler, message, namespace, sid, *args)
        with SocketEventContext(environ["flask.app"], environ, session=session) as ctx:
            ctx.request.sid = sid
            ctx.request.namespace = namespace
            ctx.request.event = {"message": message, "args": args}
            try:
                return handler(*args)
            except ConnectionRefusedError:
                raise  # python-socketio's to handle
            except Exception as error:
                err_handler = self.exception_handlers.get(namespace, self.default_exception_handler)
                if err_handler is None:
                    raise
                return err_handler(error)
