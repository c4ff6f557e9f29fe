"""What a deployer sees (issue 18): a request id on every response and log line, the
real client address in the log (text or JSON lines), and Prometheus metrics at /metrics
for the addresses METRICS_ALLOWED names, added up across gunicorn's workers."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.server import portal_server
from bench.server import request as send
from domain import outbox
from tests.conftest import PASSWORD, Auth, empty_database, make_user


def _samples(page: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value}."""
    found = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_failures_and_show_the_outbox_and_sessions(app, client, clock):
    """After traffic: requests by endpoint and status, sign-in failures and locks, the
    outbox backlog and the live sessions, in Prometheus' text format."""
    before = _samples(client.get("/metrics").get_data(as_text=True))
    make_user(app)
    for _ in range(3):
        client.get("/auth/sign-in")
    browser = Auth(app.test_client(), app)
    for _ in range(6):  # five wrong passwords, then the limit
        browser.sign_in(email="nobody@example.com", password="not-the-password-at-all")
    assert Auth(client, app).sign_in().status_code == 303
    with app.extensions["portal.sessionmaker"]() as db:
        outbox.enqueue(db, clock(), "someone@example.com", "Hello", "Body\n")
        db.commit()
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    after = _samples(response.get_data(as_text=True))

    def grew(name, **labels):
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("portal_requests_total", endpoint="auth.sign_in", method="GET", status="200") >= 3
    assert grew("portal_requests_total", endpoint="auth.sign_in", method="POST", status="303") >= 1
    assert grew("portal_signin_failures_total") == 5
    assert grew("portal_signin_locked_total") == 1
    assert grew("portal_request_seconds_count", endpoint="auth.sign_in") >= 10
    assert _value(after, "portal_outbox_pending") == 1
    assert _value(after, "portal_sessions_live") == 1


def test_metrics_answer_only_the_addresses_allowed(app):
    outsider = app.test_client()
    outsider.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert outsider.get("/metrics").status_code == 404
    app.config["METRICS_ALLOWED"] = "203.0.113.0/24"
    assert outsider.get("/metrics").status_code == 200
    assert app.test_client().get("/metrics").status_code == 404  # 127.0.0.1 is no longer listed


def test_every_response_carries_a_request_id_a_client_cannot_choose(app, client):
    first, second = client.get("/auth/sign-in"), client.get("/healthz")
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(len(value) == 32 for value in ids) and ids[0] != ids[1]
    chosen = client.get("/auth/sign-in", headers={"X-Request-ID": "made-up-by-a-client"})
    assert chosen.headers["X-Request-ID"] != "made-up-by-a-client"  # no proxy vouches for it


def test_behind_the_proxy_the_log_is_json_lines_with_its_request_id_and_the_real_client(db_backend, request, tmp_path):
    """Under gunicorn with LOG_FORMAT=json behind one trusted proxy: nginx's request id is
    kept (so both logs match), each log line is JSON with the request id and the client's
    own address (not 127.0.0.1); two workers' counts add up in /metrics."""
    database_url = empty_database(db_backend, request, tmp_path / "db")
    log_path = tmp_path / "server.log"
    with portal_server(
        database_url,
        workers=2,
        threads=2,
        log_path=log_path,
        extra_env={"LOG_FORMAT": "json", "TRUSTED_PROXY_COUNT": "1"},
    ) as base_url:
        status, headers, _ = send(
            base_url,
            "GET",
            "/auth/sign-in",
            headers={"X-Request-ID": "nginx-req-4242", "X-Forwarded-For": "198.51.100.7"},
        )
        assert status == 200 and headers["x-request-id"] == "nginx-req-4242"
        for _ in range(20):
            assert send(base_url, "GET", "/pages/privacy", headers={"X-Forwarded-For": "127.0.0.1"})[0] == 200
        _, _, page = send(base_url, "GET", "/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
    samples = _samples(page.decode())
    assert _value(samples, "portal_requests_total", endpoint="pages.privacy", method="GET", status="200") == 20
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    ours = [line for line in lines if line.get("request_id") == "nginx-req-4242"]
    assert ours and ours[0]["client"] == "198.51.100.7" and ours[0]["name"] == "portal.request"
    assert "GET /auth/sign-in 200" in ours[0]["message"] and ours[0]["level"] == "INFO"
    assert PASSWORD not in log_path.read_text()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_flask_command_prints_no_log_noise(tmp_path, log_format):
    """Logging is set up once, at start, and a command prints what it says itself."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "FLASK_APP": "app",
        "LOG_FORMAT": log_format,
    }
    result = subprocess.run(
        [sys.executable, "-m", "flask", "db-upgrade"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert (result.stdout + result.stderr).strip() == "Database is up to date."


def test_outbox_status_lists_failures_and_retry_sends_one_again(app, clock):
    """`flask outbox status` counts each state and lists the failed emails with their last
    error; `flask outbox retry ID` puts one back, and only a failed one."""
    from models import OutboxEmail

    with app.extensions["portal.sessionmaker"]() as db:
        outbox.enqueue(db, clock(), "one@example.com", "Waiting", "Body\n")
        failed = outbox.enqueue(db, clock(), "two@example.com", "Bounced", "Body\n")
        db.flush()
        failed.status, failed.attempts, failed.last_error = "failed", 8, "SMTPRecipientsRefused"
        db.commit()
        failed_id = failed.id
    runner = app.test_cli_runner()
    result = runner.invoke(args=["outbox", "status"])
    assert result.exit_code == 0
    assert "pending 1, sending 0, sent 0, failed 1" in result.output
    assert f"{failed_id}" in result.output and "SMTPRecipientsRefused" in result.output and "Bounced" in result.output
    assert runner.invoke(args=["outbox", "retry", str(failed_id)]).exit_code == 0
    with app.extensions["portal.sessionmaker"]() as db:
        row = db.get(OutboxEmail, failed_id)
        assert (row.status, row.attempts) == ("pending", 0)
    again = runner.invoke(args=["outbox", "retry", str(failed_id)])
    assert again.exit_code != 0 and "No failed email" in again.output
