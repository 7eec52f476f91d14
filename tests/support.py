"""Helpers shared by fixtures: free loopback ports, real server processes, an SMTP sink's handler."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """Return a loopback port nobody is listening on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SinkHandler:
    """aiosmtpd handler collecting every message received; refuses recipients listed in `refuse`."""

    def __init__(self):
        self.messages = []
        self.refuse = set()
        self.received = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "message": message_from_bytes(envelope.content, policy=policy.default),
            "raw": envelope.content,
        })
        self.received.set()
        return "250 Message accepted"

    def to(self, address):
        """Return the parsed messages delivered to one address."""
        return [m["message"] for m in self.messages if address in m["rcpt_tos"]]


class ServerProcess:
    """A real server process: python wsgi.py (eventlet, monkey-patched) on its own loopback port."""

    def __init__(self, database_url, redis_url=None, port=None, **settings):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, DATABASE_URL=database_url, PORT=str(self.port), HOST="127.0.0.1",
                        SECRET_KEY="test-secret", PYTHONUNBUFFERED="1")
        self.env.pop("REDIS_URL", None)
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.env.update({k: str(v) for k, v in settings.items()})
        self.proc = None
        self.start()

    def start(self):
        # A file, not a pipe: nobody reads the log while it runs, and a full pipe would stall the server.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited: {self.log.read().decode()[-3000:]}")
            try:
                if requests.get(self.url + "/login", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start")

    def kill(self):
        """Kill -9: no clean shutdown, as when a machine dies."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class WorkerProcess:
    """A real job worker process: python -m crm.worker, logging to a file the test can read."""

    def __init__(self, database_url, **settings):
        self.env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY="test-secret", PYTHONUNBUFFERED="1")
        self.env.pop("REDIS_URL", None)
        self.env.update({k: str(v) for k, v in settings.items()})
        self.log = tempfile.NamedTemporaryFile(suffix=".log")
        self.proc = subprocess.Popen([sys.executable, "-m", "crm.worker"], cwd=ROOT, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self.log)

    def output(self) -> str:
        with open(self.log.name, encoding="utf-8", errors="replace") as log:
            return log.read()

    def registered_jobs(self, timeout: float = 60) -> set[str]:
        """Wait for the consumer's start-up list of the jobs it can run and return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output()
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {text[-3000:]}")
            start = text.find("The following commands are available:")
            if start >= 0:
                lines = text[start:].splitlines()[1:]
                names = set()
                for line in lines:
                    if not line.startswith("+ "):
                        break
                    names.add(line[2:].strip())
                if names:
                    return names
            time.sleep(0.2)
        raise RuntimeError(f"worker did not list its jobs: {self.output()[-3000:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
