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
from pathlib import Path

from flask import Flask, Response, request

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
def bare_server(
    replay_dir: Path, *, workers: int, threads: int = 1, port: int | None = None, log_path: Path | None = None
):
    """Start the bare application under gunicorn; yield its base URL; stop it."""
    from bench.server import free_port, gunicorn

    env = {**os.environ, "BARE_REPLAY_DIR": str(replay_dir)}
    # Answering: every path it does not know is a 404.
    with gunicorn(
        "bench.bare_app:create_app()",
        env,
        workers=workers,
        threads=threads,
        port=port or free_port(),
        log_path=log_path,
        ready_path="/__ready__",
        ready_status=404,
        name="gunicorn (bare)",
    ) as base_url:
        yield base_url
