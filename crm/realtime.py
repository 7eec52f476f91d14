"""Socket.IO across processes through Redis that degrades to this process while Redis is away.

python-socketio's RedisManager already delivers to this process's sockets first, but it
publishes inline (a paused Redis freezes the handler, and the ack with it), drops what it
could not publish, and its listener backs off up to 60 s after an outage. This one publishes
from a queue in a background task with short timeouts (pipelined when several wait), keeps
what could not be published (up to a bound) and sends it when Redis answers again, and
re-subscribes within a second. After the listener was cut off it runs the `resubscribed`
callbacks, so areas re-send what their clients may have missed from other processes.
"""
import collections
import threading
import logging
import time

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
