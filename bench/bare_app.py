"""The floor for bench/throughput.py: a bare Flask application that answers each
URL it knows with bytes captured from the portal, and does nothing else (no
database, no session, no CSRF, no access gate, no templates, no security
headers, no compression).

    BARE_REPLAY_DIR=/tmp/replay gunicorn 'bench.bare_app:create_app()'

BARE_REPLAY_DIR holds `index.json` ({"/path?query": "file name"}) and the files
it names. One route takes every path; it looks the request's path and query
up in the index and answers the file's bytes as text/html (200), or 404.
`bare_server` runs it under gunicorn on a free loopback port, the same way
bench/server.py runs the portal.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

from flask import Flask, Response, request

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
CONTENT_TYPE = "text/html; charset=utf-8"


def create_app(replay_dir: str | None = None) -> Flask:
    folder = Path(replay_dir or os.environ["BARE_REPLAY_DIR"])
    index = json.loads((folder / "index.json").read_text())
    bodies = {target: (folder / name).read_bytes() for target, name in index.items()}
    app = Flask("bare_app")

    @app.route("/", defaults={"path": ""})
    @app.route("/<path:path>")
    def replay(path: str):
        query = request.query_string.decode("latin-1")
        body = bodies.get(f"/{path}?{query}" if query else f"/{path}")
        if body is None:
            return Response(b"not captured", 404, content_type="text/plain")
        return Response(body, 200, content_type=CONTENT_TYPE)

    return app


@contextlib.contextmanager
def bare_server(replay_dir: Path, *, workers: int, threads: int = 1, port: int | None = None,
                log_path: Path | None = None):
    """Start the bare application under gunicorn; yield its base URL and the port; stop it."""
    from bench.server import free_port, request as http_request

    port = port or free_port()
    env = {**os.environ, "BARE_REPLAY_DIR": str(replay_dir)}
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    args = [str(GUNICORN), "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
            "--log-level", "warning", "bench.bare_app:create_app()"]
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn (bare) exited with {process.returncode}")
            try:
                status, _, _ = http_request(base_url, "GET", "/__ready__")
                if status == 404:  # answering: every path it does not know is a 404
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn (bare) did not answer within 30 s")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log is not subprocess.DEVNULL:
            log.close()
