"""gunicorn's settings for the portal. gunicorn reads this file from the folder it is
started in (`make run`, bench/server.py, the deployment in docs/deploy.md).

A proxy in front is trusted only through the portal's own setting, TRUSTED_PROXY_COUNT
(Werkzeug's ProxyFix in app.py), never by gunicorn on its own: by default gunicorn
believes X-Forwarded-Proto and its kin from 127.0.0.1, so any process on the host, or a
proxy that passes the client's header through, could make a plain HTTP request look
secure (and the portal would answer it with HSTS and Secure cookies).

Metrics: every worker is its own process, so prometheus_client keeps its counters in
files in PROMETHEUS_MULTIPROC_DIR, which /metrics adds up (web/observability.py). The
folder is emptied when gunicorn starts, and a worker that exits has its gauges dropped.
"""

import os
import shutil
import tempfile
from pathlib import Path

forwarded_allow_ips = ""

_made_here = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Set here, in the master, so every worker it forks inherits it before importing the app.
    _made_here = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="portal-metrics-")


def on_starting(server):
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # counts from a previous run of the server
        stale.unlink()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_here:
        shutil.rmtree(_made_here, ignore_errors=True)
