"""Settings a deployer gets wrong (issue 18): every unparseable number or unknown value is
refused at start in any environment, naming the variable and what it accepts; production
also refuses a PUBLIC_BASE_URL people cannot reach over HTTPS, and the demo data. The
docs/configuration.md's table lists exactly the settings config.py reads."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

import config
from app import ConfigurationError, create_app
from models import User

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "PORTAL_ENV": "production",
    "MAIL_SENDER": "smtp",
    "SECRET_KEY": "k" * 48,
    "PUBLIC_BASE_URL": "https://tracs.example.ca",
}


def _read_by_config(kind: str) -> list[str]:
    """The variables config.py reads with one of its readers (_int, _bool, _choice ...)."""
    return re.findall(rf'{kind}\("([A-Z0-9_]+)"', (ROOT / "config.py").read_text())


def settings_read_by_config() -> set[str]:
    """Every environment variable config.py reads, by any of its readers."""
    readers = r'(?:_int|_bool|_choice|_timezone|_networks)\("([A-Z0-9_]+)"|os\.environ\.get\(\s*"([A-Z0-9_]+)"'
    return {a or b for a, b in re.findall(readers, (ROOT / "config.py").read_text())}


def _environment(monkeypatch, **values):
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def _refused(monkeypatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message):
        config.from_environment()


@pytest.mark.parametrize("name", _read_by_config("_int"))
def test_a_number_that_is_not_one_is_refused_by_name(monkeypatch, name):
    _refused(monkeypatch, name, "abc", rf"^{name} must be a whole number; it is 'abc'$")
    _refused(monkeypatch, name, "-5", rf"^{name} must be 0 or more")


@pytest.mark.parametrize("name", _read_by_config("_bool"))
def test_a_switch_that_is_neither_on_nor_off_is_refused_by_name(monkeypatch, name):
    _refused(monkeypatch, name, "maybe", rf"^{name} must be true or false")
    monkeypatch.setenv(name, "Off")
    assert config.from_environment()[name] is False


@pytest.mark.parametrize(
    "name, wrong, accepted",
    [
        ("PORTAL_ENV", "prod", "'development', 'production'"),
        ("MAIL_SENDER", "carrier-pigeon", "'log', 'smtp'"),
        ("SERVICE_HOURS", "sometimes", "'always', 'tracs'"),
        ("DOCUMENT_STORE", "s3", "'', 'database', 'filesystem'"),
    ],
)
def test_an_unknown_value_is_refused_with_what_is_accepted(monkeypatch, name, wrong, accepted):
    assert name in _read_by_config("_choice")
    monkeypatch.setenv(name, wrong)
    with pytest.raises(ConfigurationError, match=re.escape(f"{name} must be one of {accepted}; it is {wrong!r}")):
        config.from_environment()


@pytest.mark.parametrize("wrong", ["everyone", "10.0.0.0/8,", "300.1.1.1"])
def test_metrics_addresses_that_do_not_parse_are_refused(monkeypatch, wrong):
    _refused(monkeypatch, "METRICS_ALLOWED", wrong, "^METRICS_ALLOWED must list addresses or networks")


def test_an_unknown_time_zone_is_refused(monkeypatch):
    monkeypatch.setenv("SERVICE_TIMEZONE", "Mars/Olympus_Mons")
    with pytest.raises(ConfigurationError, match="SERVICE_TIMEZONE must be a time zone name"):
        config.from_environment()


@pytest.mark.parametrize(
    "base", [None, "http://127.0.0.1:8000", "http://tracs.example.ca", "https://localhost", "tracs.example.ca"]
)
def test_production_refuses_a_public_address_people_cannot_reach_over_https(monkeypatch, app_config, base):
    _environment(monkeypatch, **{k: v for k, v in PRODUCTION.items() if k != "PUBLIC_BASE_URL"})
    settings = {k: v for k, v in app_config.items() if k != "PUBLIC_BASE_URL"} | {"SECRET_KEY": "k" * 48}
    if base is None:
        monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    else:
        settings["PUBLIC_BASE_URL"] = base
    with pytest.raises(ConfigurationError, match=r"^PUBLIC_BASE_URL must be the https address people use"):
        create_app(settings)


def test_in_development_the_public_address_follows_the_port(monkeypatch):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("PORT", "8123")
    assert config.from_environment()["PUBLIC_BASE_URL"] == "http://127.0.0.1:8123"


def _registration_link(app, base_url: str, **headers) -> str:
    """Register through the real form at `base_url`; the link in the confirmation email."""
    from tests.conftest import PASSWORD, csrf_from, outbox

    client = app.test_client()
    form = client.get("/auth/register", base_url=base_url, headers=headers).get_data(as_text=True)
    data = {"name": "Pat Port", "email": f"pat{len(outbox(app))}@example.com", "password": PASSWORD}
    data |= {"password_confirm": PASSWORD, "csrf_token": csrf_from(form)}
    assert client.post("/auth/register", data=data, base_url=base_url, headers=headers).status_code == 303
    return re.search(r"https?://\S+", outbox(app)[-1].body_text).group(0)


def test_in_development_emailed_links_follow_the_port_the_page_was_served_on(monkeypatch, app_with):
    """`make run PORT=8123`, `flask run` on 5000: the link opens on the server that sent it.
    Only a loopback host is taken from the request; a forged Host gets the configured address."""
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    monkeypatch.setenv("PORT", "8123")
    assert config.from_environment()["LINKS_FOLLOW_THE_SERVED_ADDRESS"] is True
    app = app_with(PUBLIC_BASE_URL="http://127.0.0.1:8000", LINKS_FOLLOW_THE_SERVED_ADDRESS=True)
    assert _registration_link(app, "http://127.0.0.1:5000").startswith("http://127.0.0.1:5000/auth/verify/")
    assert _registration_link(app, "http://localhost:8123").startswith("http://localhost:8123/auth/verify/")
    forged = _registration_link(app, "http://127.0.0.1:5000", Host="attacker.example")
    assert forged.startswith("http://127.0.0.1:8000/auth/verify/")


def test_a_set_public_address_is_used_as_it_is(monkeypatch, app_with):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://tracs.example.ca")
    assert config.from_environment()["LINKS_FOLLOW_THE_SERVED_ADDRESS"] is False
    app = app_with(PUBLIC_BASE_URL="https://tracs.example.ca", LINKS_FOLLOW_THE_SERVED_ADDRESS=False)
    assert _registration_link(app, "http://127.0.0.1:5000").startswith("https://tracs.example.ca/auth/verify/")


def test_demo_data_refuses_to_load_in_production(monkeypatch, app_config):
    _environment(monkeypatch, **PRODUCTION)
    app = create_app({**app_config, **PRODUCTION})
    try:
        result = app.test_cli_runner().invoke(args=["demo-data"])
        assert result.exit_code != 0
        assert "does not run with PORTAL_ENV=production" in result.output
        with app.extensions["portal.sessionmaker"]() as db:
            assert db.scalar(select(func.count()).select_from(User)) == 0
    finally:
        app.extensions["portal.engine"].dispose()


def test_flask_help_names_the_setting_that_is_wrong(tmp_path):
    """A bad setting no longer hides behind `flask --help` listing no project commands."""
    environment = {
        **os.environ,
        "SMTP_PORT": "abc",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "FLASK_APP": "app",
    }
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--help"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert "SMTP_PORT must be a whole number; it is 'abc'" in result.stdout + result.stderr


def test_the_readme_lists_every_setting_config_reads():
    """docs/configuration.md's table and config.py name the same variables (plus PORT
    and WORKERS, which `make run` reads)."""
    readme = (ROOT / "docs" / "configuration.md").read_text()
    table = readme[readme.index("| Variable | Default | Meaning |") :]
    table = table[: table.index("\n\n")]
    listed = set(re.findall(r"^\| `([A-Z0-9_]+)`", table, re.M))
    read = settings_read_by_config()
    assert read - listed == set(), "read by config.py, missing from docs/configuration.md"
    assert listed - read - {"PORT", "WORKERS"} == set(), "in docs/configuration.md, not read by config.py"


def test_make_run_installs_only_what_running_needs(tmp_path):
    """Issue 18: `make run` on a fresh machine installs requirements.txt alone (213 MB, not
    the 443 MB of the test tools); `make test` adds requirements-dev.txt. Read from what make
    would do in a fresh copy (`make -n`)."""
    import shutil

    for name in ("Makefile", "requirements.txt", "requirements-dev.txt", "package.json", "package-lock.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "static").mkdir()

    def planned(target: str) -> str:
        return subprocess.run(["make", "-n", target], cwd=tmp_path, capture_output=True, text=True, timeout=60).stdout

    run = planned("run")
    assert "pip install --quiet -r requirements.txt" in run and "requirements-dev.txt" not in run
    assert "gunicorn" in run
    assert "pip install --quiet -r requirements-dev.txt" in planned("test")
    development_only = {
        line.split("==")[0].lower() for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if "==" in line
    }
    runtime = {
        line.split("==")[0].lower() for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line
    }
    assert {"pytest", "playwright", "locust", "hypothesis"} <= development_only and not runtime & {
        "pytest",
        "playwright",
        "locust",
        "hypothesis",
        "aiosmtpd",
    }
