"""The deployment files in deploy/ (issue 18), tested as a deployer uses them: the systemd
units pass `systemd-analyze verify`, the environment example names every setting and
starts production, and Debian's nginx with deploy/nginx-portal.conf (TLS with a self-signed
certificate) in front of two gunicorn servers on one PostgreSQL serves a journey that
alternates between them: the session, an upload made on one and downloaded from the
other, the sign-in limit across both, each email sent once, static files from the build."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from bench.server import BENCH_SECRET, _cookie_header, _cookies, portal_server
from tests.conftest import PASSWORD, POSTGRES_ADMIN_URL, UNDER_CI, make_user
from tests.test_documents import make_pdf
from tests.test_email import Collector, free_port
from tests.test_settings import settings_read_by_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def test_the_systemd_units_verify():
    """Only the missing /srv/portal install may be reported: no unknown setting, no typo."""
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing") if UNDER_CI else pytest.skip("no systemd-analyze here")
    units = [str(DEPLOY / name) for name in ("portal.service", "portal-hourly.service", "portal-hourly.timer")]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable: No such file or directory" not in line
    ]
    assert problems == []


def _settings_in(path: Path) -> dict[str, str | None]:
    """{name: value, or None when the line is commented out}."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"(#?)([A-Z][A-Z0-9_]+)=(.*)", line)
        if match:
            found[match.group(2)] = None if match.group(1) else match.group(3).strip('"')
    return found


def test_the_environment_example_names_every_setting_and_starts_production(monkeypatch, tmp_path):
    import config
    from app import create_app

    settings = _settings_in(DEPLOY / "portal.env.example")
    assert set(settings) == settings_read_by_config()
    for name, value in settings.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("SECRET_KEY", "s" * 48)  # the one a deployer must fill in
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'p.db'}")
    assert config.from_environment()["PORTAL_ENV"] == "production"
    app = create_app({"OUTBOX_THREAD": False})
    app.extensions["portal.engine"].dispose()


# --- nginx in front of two servers -------------------------------------------------------


def _need_nginx():
    if not Path(NGINX).exists():
        if UNDER_CI:
            pytest.fail("nginx is required under CI (.ci/test-services installs it)")
        pytest.skip("nginx is not installed: sudo make test-services")


def _certificate(folder: Path) -> tuple[Path, Path]:
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return key, cert


def _site(folder: Path, backends: list[int], https_port: int, http_port: int) -> Path:
    """deploy/nginx-portal.conf as it is, with this machine's names, ports and folders."""
    key, cert = _certificate(folder)
    public = folder / "public"
    shutil.copytree(ROOT / "build" / "static", public / "static")
    # A file of the release before, still in the folder every release is copied into.
    (public / "static" / "vendor" / "htmx.min.0123456789ab.js").write_bytes(b"/* the previous release */")
    site = (DEPLOY / "nginx-portal.conf").read_text()
    replacements = {
        "server 127.0.0.1:8000;": "".join(f"server 127.0.0.1:{port};" for port in backends),
        "portal.example.ca;": "localhost;",
        "/etc/letsencrypt/live/portal.example.ca/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/portal.example.ca/privkey.pem": str(key),
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:443 ssl http2;": "",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen [::]:80;": "",
        "/var/log/nginx/portal.access.log": str(folder / "access.log"),
        "/srv/portal/public": str(public),
        # The test's two changes beyond names, ports and folders. To see which server answered:
        "proxy_pass http://portal;\n    }": (
            "proxy_pass http://portal;\n        add_header X-Upstream $upstream_addr always;\n    }"
        ),
        # And Flask-WTF compares the Referer's host and port with Host: here not on port 443.
        "proxy_set_header Host $host;": "proxy_set_header Host $http_host;",
    }
    for old, new in replacements.items():
        assert old in site, old
        site = site.replace(old, new)
    main = folder / "nginx.conf"
    main.write_text(f"""user root;
worker_processes 1;
daemon off;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
include /etc/nginx/modules-enabled/*.conf;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    client_body_temp_path {folder / "body"};
    proxy_temp_path {folder / "proxy"};
    fastcgi_temp_path {folder / "fastcgi"};
    uwsgi_temp_path {folder / "uwsgi"};
    scgi_temp_path {folder / "scgi"};
{site}
}}
""")
    return main


class Visitor:
    """One browser over HTTPS through nginx: its cookies, and which server answered."""

    def __init__(self, port: int):
        self.port, self.cookies, self.served_by = port, {}, []
        self.context = ssl.create_default_context()
        self.context.check_hostname, self.context.verify_mode = False, ssl.CERT_NONE

    def send(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPSConnection("localhost", self.port, context=self.context, timeout=30)
        base = f"https://localhost:{self.port}"
        sent = {"Cookie": _cookie_header(self.cookies), "Referer": f"{base}/", "Origin": base, **(headers or {})}
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            answer = {k.lower(): v for k, v in response.getheaders()}
            data = response.read()
        finally:
            conn.close()
        for name, value in _cookies(answer).items():
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        if "x-upstream" in answer:
            self.served_by.append(answer["x-upstream"])
        return response.status, answer, data

    def form(self, path: str, fields: dict, page: bytes):
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
        body = urllib.parse.urlencode({**fields, "csrf_token": token}).encode()
        return self.send("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})


def _multipart(fields: dict, files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, content in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/pdf\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def shared_postgresql(request):
    """A fresh PostgreSQL database, migrated by two `flask db-upgrade` run at once."""
    request.getfixturevalue("postgres_database")
    import psycopg

    name = f"portal_two_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    environment = {**os.environ, "DATABASE_URL": url, "FLASK_APP": "app"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "db-upgrade"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    assert [run.wait(120) for run in runs] == [0, 0]
    yield url
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_servers_behind_nginx_share_everything(tmp_path, shared_postgresql):
    _need_nginx()
    from app import create_app
    from domain import enrolment
    from tests.accounts_factory import give, open_account, sessionmaker_of

    smtp = Collector()
    from aiosmtpd.controller import Controller

    controller = Controller(smtp, hostname="127.0.0.1", port=free_port())
    controller.start()
    setup = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": BENCH_SECRET,
            "DATABASE_URL": shared_postgresql,
            "OUTBOX_THREAD": False,
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_KIB": 1024,
        }
    )
    enrolment.configure(BENCH_SECRET)
    for email in ("owner@example.com", "second@example.com"):
        make_user(setup, email=email, name="Olive Owner")
    with sessionmaker_of(setup)() as db:
        from sqlalchemy import select

        from models import User

        account = open_account(db, serial=11, legal_name="Two Servers Ltd.")
        owner = db.scalar(select(User.id).where(User.email == "owner@example.com"))
        give(db, setup.extensions["portal.clock"](), owner, account)
        db.commit()
        number = account.number
    https_port, http_port = free_port(), free_port()
    environment = {
        "TRUSTED_PROXY_COUNT": "1",
        "MAIL_SENDER": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(controller.port),
        "OUTBOX_THREAD": "1",
        "OUTBOX_POLL_SECONDS": "1",
        "PUBLIC_BASE_URL": f"https://localhost:{https_port}",
    }
    ports = [free_port(), free_port()]
    nginx = None
    try:
        with (
            portal_server(
                shared_postgresql,
                workers=1,
                threads=2,
                port=ports[0],
                extra_env=environment,
                log_path=tmp_path / "a.log",
            ),
            portal_server(
                shared_postgresql,
                workers=1,
                threads=2,
                port=ports[1],
                extra_env=environment,
                log_path=tmp_path / "b.log",
            ),
        ):
            main = _site(tmp_path, ports, https_port, http_port)
            checked = subprocess.run([NGINX, "-t", "-c", str(main)], capture_output=True, text=True, timeout=30)
            assert checked.returncode == 0, checked.stderr
            nginx = subprocess.Popen([NGINX, "-c", str(main)], stderr=subprocess.PIPE)
            visitor = Visitor(https_port)
            deadline = time.monotonic() + 20
            while True:
                try:
                    _status, _, page = visitor.send("GET", "/auth/sign-in")
                    break
                except OSError:
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.2)
            _journey(visitor, page, number, https_port, http_port, smtp)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        controller.stop()
        setup.extensions["portal.engine"].dispose()


def _journey(visitor: Visitor, page: bytes, number: str, https_port: int, http_port: int, smtp: Collector) -> None:
    # Plain HTTP is sent to HTTPS.
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
    conn.request("GET", "/auth/sign-in", headers={"Host": "localhost"})
    redirect = conn.getresponse()
    assert redirect.status == 301 and redirect.getheader("Location").startswith("https://localhost")
    conn.close()
    # The sign-in page from one server, the sign-in itself on the other: one session for both.
    status, headers, _ = visitor.form(
        "/auth/sign-in", {"email": "owner@example.com", "password": PASSWORD, "next": ""}, page
    )
    assert status == 303 and "strict-transport-security" in headers, (status, headers)
    for _ in range(4):
        status, _, _ = visitor.send("GET", f"/accounts/{number}/")
        assert status == 200
    assert len(set(visitor.served_by)) == 2, visitor.served_by  # both servers answered
    # An upload on one server, downloaded from the other.
    status, _, form_page = visitor.send("GET", f"/documents/{number}/upload")
    assert status == 200
    hidden = dict(re.findall(rb'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', form_page))
    pdf = make_pdf("Receipts kept across two servers")
    body, content_type = _multipart(
        {**{k.decode(): v.decode() for k, v in hidden.items()}, "description": "Receipts"},
        [("files", "receipts.pdf", pdf)],
    )
    status, headers, _ = visitor.send("POST", f"/documents/{number}/upload", body, {"Content-Type": content_type})
    assert status == 303, status
    uploaded_by = visitor.served_by[-1]
    _, _, listing = visitor.send("GET", f"/documents/{number}/")
    link = re.search(rb"/documents/%s/(\d+)/download" % number.encode(), listing).group(0).decode()
    for _ in range(2):  # one of the two is the other server
        status, _, downloaded = visitor.send("GET", link)
        assert status == 200 and downloaded == pdf
    assert any(server != uploaded_by for server in visitor.served_by[-2:])
    # Static files come from nginx, pre-compressed, with the app's hashed names.
    script = re.search(rb'src="(/static/vendor/htmx\.min\.[0-9a-f]+\.js)"', listing).group(1).decode()
    status, headers, _ = visitor.send("GET", script, headers={"Accept-Encoding": "br"})
    assert status == 200 and headers.get("content-encoding") == "br" and "immutable" in headers["cache-control"]
    # A page from the previous release, still open during an upgrade, still gets its script.
    status, _, old_script = visitor.send("GET", "/static/vendor/htmx.min.0123456789ab.js")
    assert status == 200 and old_script == b"/* the previous release */"
    # The sign-in limit holds across both servers: five wrong tries, then 429.
    guesser = Visitor(https_port)
    answers = []
    for index in range(6):
        _, _, sign_in_page = guesser.send("GET", "/auth/sign-in")
        answers.append(
            guesser.form(
                "/auth/sign-in", {"email": "second@example.com", "password": f"wrong-{index}", "next": ""}, sign_in_page
            )[0]
        )
    assert answers == [400] * 5 + [429], answers
    assert len(set(guesser.served_by)) == 2
    # Each email once, though both servers' outbox threads are sending.
    for _ in range(2):
        reset = Visitor(https_port)
        _, _, forgot = reset.send("GET", "/auth/forgot-password")
        assert reset.form("/auth/forgot-password", {"email": "owner@example.com"}, forgot)[0] == 303
    deadline = time.monotonic() + 15
    while len(smtp.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # time for a second send, if there were to be one
    assert [message["Subject"] for message in smtp.messages] == ["Reset your password"] * 2
    assert all(
        f"https://localhost:{https_port}/auth/reset-password/" in message.get_body().get_content()
        for message in smtp.messages
    )


def test_a_release_archive_runs_without_node_or_a_build(tmp_path):
    """`make dist` (deploy/release.py): the archive holds the code, htmx and every built
    static file, and none of the tests; unpacked elsewhere it serves its pages and its
    hashed script with nothing run but pip's install (here: this environment)."""
    import tarfile

    archive = subprocess.run(
        [sys.executable, str(DEPLOY / "release.py"), "--out", str(tmp_path / "dist")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        tar.extractall(tmp_path / "unpacked", filter="data")
    inside = {name.split("/", 1)[1] for name in names if "/" in name}
    assert {"app.py", "requirements.txt", "deploy/portal.service", "static/vendor/htmx.min.js", "RELEASE"} <= inside
    assert any(re.fullmatch(r"build/static/vendor/htmx\.min\.[0-9a-f]{12}\.js\.br", name) for name in inside)
    assert not any(name.startswith(("tests/", "bench/", ".ci/")) for name in inside)
    release = tmp_path / "unpacked" / top
    check = """
import re
from app import create_app
app = create_app({"TESTING": True, "DATABASE_URL": "sqlite:///%s", "OUTBOX_THREAD": False})
client = app.test_client()
page = client.get("/auth/sign-in").get_data(as_text=True)
script = re.search(r'src="(/static/vendor/htmx[^"]+)"', page).group(1)
answer = client.get(script, headers={"Accept-Encoding": "br"})
print(answer.status_code, answer.headers.get("Content-Encoding"))
""" % (tmp_path / "release.db")
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=release,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(release)},
    )
    assert result.stdout.strip().splitlines()[-1] == "200 br", result.stderr[-2000:]
