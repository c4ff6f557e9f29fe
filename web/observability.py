"""What a deployer sees: a request id on every log line and response, one log line per
request with the real client address (text, or JSON lines when LOG_FORMAT=json), and
Prometheus metrics at /metrics for the addresses METRICS_ALLOWED names.

Metrics under gunicorn: each worker is its own process, so the counters live in files
in PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py makes it fresh at start and clears a
dead worker's gauges), and /metrics adds them up. Without it (one process: the tests,
`flask run`) the counters are the process's own."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import sys
import time
import uuid

from flask import Flask, Response, abort, current_app, g, has_request_context, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

REQUESTS = Counter(
    "portal_requests", "Requests answered, by endpoint, method and status", ["endpoint", "method", "status"]
)
LATENCY = Histogram(
    "portal_request_seconds",
    "Time to answer a request, by endpoint",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SERVER_ERRORS = Counter("portal_server_errors", "Requests answered with a 5xx status", ["endpoint"])
SIGN_IN_FAILURES = Counter("portal_signin_failures", "Wrong passwords or codes at sign-in and re-confirmation")
SIGN_IN_LOCKS = Counter("portal_signin_locked", "Sign-in tries refused because a limit was reached")

log = logging.getLogger("portal.request")


# --- Request ids and the request log -------------------------------------------------------


def _request_id() -> str:
    """The proxy's id when a trusted proxy stands in front (so nginx's log and ours
    match), else a new one. Never a value a client made up when nobody vouches for it."""
    if current_app.config["TRUSTED_PROXY_COUNT"]:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        if _SAFE_REQUEST_ID.fullmatch(offered):
            return offered
    return uuid.uuid4().hex


def begin_request() -> None:
    g.request_id = _request_id()
    g.request_started = time.perf_counter()


def end_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    started = g.get("request_started")
    elapsed = time.perf_counter() - started if started is not None else 0.0
    endpoint = request.endpoint or "unknown"
    REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
    LATENCY.labels(endpoint).observe(elapsed)
    if response.status_code >= 500:
        SERVER_ERRORS.labels(endpoint).inc()
    if not request.path.startswith(("/static/", "/healthz", "/metrics")):
        # The path only, never the query: it can hold a search for a person's name.
        log.info(
            "%s %s %s %.1f ms",
            request.method,
            request.path,
            response.status_code,
            elapsed * 1000,
            extra={"status": response.status_code, "duration_ms": round(elapsed * 1000, 1)},
        )
    return response


class RequestContext(logging.Filter):
    """Adds the request id, the client address (the real one: ProxyFix has run) and the
    request's method and path to every record logged while a request is answered."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id", "-")
            record.client = request.remote_addr or "-"
        else:
            record.request_id, record.client = "-", "-"
        return True


_configured = False


def configure_logging(log_format: str) -> None:
    """Once per process: one handler on the root logger, text or JSON lines."""
    global _configured
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestContext())
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(client)s",
                rename_fields={"asctime": "time", "levelname": "level"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s %(client)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # Alembic says what it does at INFO, seven lines on every `flask` command: the
    # commands say what matters themselves.
    logging.getLogger("alembic").setLevel(logging.WARNING)


# --- /metrics ------------------------------------------------------------------------------


class _DatabaseGauges:
    """Read when /metrics is scraped: the outbox's backlog and failures, live sessions."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        from domain.metrics import database_figures

        with self.app.extensions["portal.sessionmaker"]() as db:
            figures = database_figures(
                db, self.app.extensions["portal.clock"](), self.app.config["SESSION_IDLE_SECONDS"]
            )
        for name, (help_text, value) in figures.items():
            family = GaugeMetricFamily(name, help_text)
            family.add_metric([], value)
            yield family


def allowed(address: str | None, networks: str) -> bool:
    try:
        client = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    for network in (part.strip() for part in networks.split(",")):
        if network and client in ipaddress.ip_network(network, strict=False):
            return True
    return False


def metrics_page() -> Response:
    if not allowed(request.remote_addr, current_app.config["METRICS_ALLOWED"]):
        abort(404)  # as if there were nothing here
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    page = generate_latest(registry) + generate_latest(_single(_DatabaseGauges(current_app)))
    return Response(page, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def _single(collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def init_app(app: Flask) -> None:
    configure_logging(app.config["LOG_FORMAT"])
    app.before_request(begin_request)
    app.after_request(end_request)
