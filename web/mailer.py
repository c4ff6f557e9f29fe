"""Sends the outbox from a background thread in each worker. Claiming each row in
the database keeps every message to one send, however many threads compete."""

from __future__ import annotations

import logging
import os
import socket
import threading
from urllib.parse import urlsplit

from flask import Flask

from domain import outbox

log = logging.getLogger("portal.mail")


class OutboxThread:
    def __init__(self, app: Flask):
        self.app = app
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def ensure_started(self) -> None:
        """Started by a worker's first request (after gunicorn forks), so messages
        left waiting by an earlier run go out without anything new to send."""
        if self.thread is None or not self.thread.is_alive():
            self.kick()

    def kick(self) -> None:
        """Something was queued: send it now rather than at the next poll."""
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="outbox", daemon=True)
                self.thread.start()
        self.wake.set()

    def _run(self) -> None:
        worker = f"{socket.gethostname()}:{os.getpid()}"
        while True:
            self.wake.wait(self.app.config["OUTBOX_POLL_SECONDS"])
            self.wake.clear()
            try:
                send_outbox(self.app, worker)
            except Exception:  # the thread must outlive a database outage
                log.exception("outbox run failed")


def send_outbox(app: Flask, worker: str = "cli") -> int:
    return outbox.send_pending(
        app.extensions["portal.sessionmaker"],
        app.extensions["portal.mail_sender"],
        app.config["MAIL_FROM"],
        worker,
        app.extensions["portal.clock"],
        message_domain=urlsplit(app.config["PUBLIC_BASE_URL"]).hostname or "localhost",
    )


def queue_email(db, now, to: str, subject: str, body: str) -> None:
    """Queue within the caller's transaction; the caller commits, then `kick_outbox`."""
    outbox.enqueue(db, now, to, subject, body)


def kick_outbox() -> None:
    from flask import current_app

    thread = current_app.extensions.get("portal.outbox_thread")
    if thread is not None:
        thread.kick()
