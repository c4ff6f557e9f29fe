"""The portal under gunicorn on loopback, for the benchmarks that need a real server
(the browser journey, Lighthouse, the load generator).

    with portal_server("sqlite:///bench/data/bench.db", workers=2) as base_url:
        cookie = sign_in(base_url, demo.BENCH_TAXPAYER_EMAIL, demo.BENCH_TAXPAYER_PASSWORD)

The server runs exactly as `make run` runs it (gunicorn, `app:create_app()`), with the
service open at all hours and the outbox thread off, on a free port of 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
BENCH_SECRET = "benchmark-secret-key-not-for-production-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(
    app_spec: str,
    env: dict,
    *,
    workers: int,
    threads: int,
    port: int,
    log_path: Path | None,
    ready_path: str,
    ready_status: int,
    name: str = "gunicorn",
):
    """Start gunicorn on 127.0.0.1:port serving app_spec; wait until `ready_path`
    answers `ready_status`; yield the base URL; stop it."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (closed when the server stops)
    args = [
        str(GUNICORN),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        app_spec,
    ]
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")
            try:
                status, _, _ = request(base_url, "GET", ready_path)
                if status == ready_status:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer {ready_path} within 30 s")
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


@contextlib.contextmanager
def portal_server(
    database_url: str,
    *,
    workers: int = 2,
    threads: int = 4,
    port: int | None = None,
    extra_env: dict | None = None,
    log_path: Path | None = None,
):
    """Start gunicorn on the database; yield its base URL; stop it."""
    port = port or free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": BENCH_SECRET,
        "SERVICE_HOURS": "always",
        "OUTBOX_THREAD": "0",
        "MAIL_SENDER": "log",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **(extra_env or {}),
    }
    with gunicorn(
        "app:create_app()",
        env,
        workers=workers,
        threads=threads,
        port=port,
        log_path=log_path,
        ready_path="/healthz",
        ready_status=200,
    ) as base_url:
        yield base_url


def request(
    base_url: str, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict, bytes]:
    parsed = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def sign_in(base_url: str, email: str, password: str) -> str:
    """Sign in with the form, as a browser would; the Cookie header for later requests."""
    status, headers, body = request(base_url, "GET", "/auth/sign-in")
    cookies = _cookies(headers)
    token = re.search(rb'name="csrf_token" value="([^"]+)"', body).group(1).decode()
    form = urllib.parse.urlencode({"email": email, "password": password, "next": "", "csrf_token": token})
    status, headers, _ = request(
        base_url,
        "POST",
        "/auth/sign-in",
        body=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": _cookie_header(cookies)},
    )
    if status != 303 or "/auth/" in headers.get("location", ""):
        raise RuntimeError(f"could not sign in as {email}: {status} {headers.get('location')}")
    cookies.update(_cookies(headers))
    return _cookie_header(cookies)


def _cookies(headers: dict) -> dict:
    # http.client joins repeated Set-Cookie headers with ", "; cookie values here hold no commas.
    found = {}
    for part in re.split(r",\s*(?=[^;,=\s]+=)", headers.get("set-cookie", "")):
        name, _, rest = part.partition("=")
        if name.strip():
            found[name.strip()] = rest.split(";", 1)[0]
    return found


def _cookie_header(cookies: dict) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


if __name__ == "__main__":  # a quick check: python bench/server.py sqlite:///bench/data/bench.db
    sys.path.insert(0, str(ROOT))
    import demo

    with portal_server(sys.argv[1]) as url:
        cookie = sign_in(url, demo.BENCH_TAXPAYER_EMAIL, demo.BENCH_TAXPAYER_PASSWORD)
        status, headers, body = request(url, "GET", "/", headers={"Cookie": cookie})
        print(url, status, len(body), "bytes")
