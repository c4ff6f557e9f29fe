"""Fixtures in the manner of Flask's tutorial: app, client, runner, and helpers.

Every test that touches the database runs on SQLite and on a real PostgreSQL
(`db_backend` is parametrised). PostgreSQL tests skip when no server answers,
except under CI (CI=true), where a missing server fails the run.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import select, text

from app import create_app
from domain import passwords
from domain.clock import FrozenClock
from domain.db import make_engine
from migrations.runner import upgrade
from models import Base, OutboxEmail, User

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Monday 23 November 2026, 11:00 Mountain time: inside service hours.
START = datetime(2026, 11, 23, 18, 0, tzinfo=timezone.utc)
PASSWORD = "correct-horse-battery-staple-9"


def pytest_addoption(parser):
    parser.addoption("--backend", action="append", choices=["sqlite", "postgresql"],
                     help="database backends to run (default: both)")
    parser.addoption("--long", action="store_true",
                     help="also run the long load and fault tests (marked `long`; `make proof`)")


def pytest_collection_modifyitems(config, items):
    """Tests marked `long` (the load run, the slow fault drills) are deselected, not
    skipped, unless --long is given: CI fails on a skip, and runs only the fast part."""
    if config.getoption("long"):
        return
    chosen = [item for item in items if item.get_closest_marker("long") is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("long")])
        items[:] = chosen


def pytest_generate_tests(metafunc):
    if "db_backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("backend") or ["sqlite", "postgresql"]
        metafunc.parametrize("db_backend", chosen, scope="session")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url():
    import psycopg

    name = f"portal_test_{uuid.uuid4().hex[:10]}"
    admin = POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql://", 1)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        if UNDER_CI:
            pytest.fail(f"PostgreSQL is required under CI and is not reachable: {error}")
        pytest.skip(f"PostgreSQL not reachable: {error}")
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(db_backend, request, tmp_path):
    if db_backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "portal.db"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        # TRUNCATE is not UPDATE or DELETE, so the append-only triggers allow it.
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def app_config(database_url, clock, tmp_path):
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-1234",
        "DATABASE_URL": database_url,
        "CLOCK": clock,
        "OUTBOX_THREAD": False,
        "SERVICE_HOURS": "always",
        "PUBLIC_BASE_URL": "http://localhost",
        # Real argon2id at a low cost: the suite signs in hundreds of times.
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_KIB": 1024,
        # Uploaded documents (the filesystem store) go to the test's own folder, never instance/.
        "DOCUMENT_DIR": str(tmp_path / "documents"),
    }


@pytest.fixture
def app_with(app_config):
    """Another app on the same database and clock (another worker), with some settings changed."""
    made = []

    def factory(**overrides):
        application = create_app({**app_config, **overrides})
        made.append(application)
        return application

    yield factory
    for application in made:
        application.extensions["portal.engine"].dispose()


@pytest.fixture
def app(app_config):
    application = create_app(app_config)
    yield application
    application.extensions["portal.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    with app.extensions["portal.sessionmaker"]() as session:
        yield session


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def make_user(app, email="taxpayer@example.com", password=PASSWORD, name="Jordan Example", verified=True,
              totp_secret=None, staff_role=None) -> int:
    clock = app.extensions["portal.clock"]
    with app.extensions["portal.sessionmaker"]() as session:
        user = User(name=name, email=email, password_hash=passwords.hash_password(password),
                    created_at=clock(), password_changed_at=clock(),
                    email_verified_at=clock() if verified else None, staff_role=staff_role,
                    totp_secret=totp_secret, totp_enabled_at=clock() if totp_secret else None)
        session.add(user)
        session.commit()
        return user.id


def outbox(app) -> list[OutboxEmail]:
    with app.extensions["portal.sessionmaker"]() as session:
        return list(session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)))


def link_in(body: str) -> str:
    match = re.search(r"http://localhost(/\S+)", body)
    assert match, "email has no link"
    return match.group(1)


class Auth:
    """Drives the real sign-in form, CSRF token and all."""

    def __init__(self, client, app):
        self.client, self.app = client, app

    def token(self, path: str = "/auth/sign-in") -> str:
        return csrf_from(self.client.get(path).get_data(as_text=True))

    def sign_in(self, email="taxpayer@example.com", password=PASSWORD, code=None, next_url=""):
        response = self.client.post("/auth/sign-in", data={
            "email": email, "password": password, "next": next_url, "csrf_token": self.token()})
        if code is not None and response.status_code == 303 and "/auth/code" in response.headers["Location"]:
            response = self.client.post("/auth/code", data={"code": code, "csrf_token": self.token("/auth/code")})
        return response

    def post(self, path: str, data: dict | None = None, token_from: str | None = None, **kwargs):
        payload = dict(data or {})
        payload["csrf_token"] = self.token(token_from or path)
        return self.client.post(path, data=payload, **kwargs)

    def sign_out(self):
        return self.post("/auth/sign-out", token_from="/")


@pytest.fixture
def auth(client, app):
    return Auth(client, app)


class StaffMember:
    """A signed-in staff member of one role (password and authenticator code), with
    its own test client: `staff.client`, `staff.id`, `staff.post(path, data)`."""

    def __init__(self, app, clock, role: str, email: str):
        import pyotp

        self.app, self.role, self.email = app, role, email
        self.secret = pyotp.random_base32()
        self.id = make_user(app, email=email, name=f"Staff {role.capitalize()}", staff_role=role,
                            totp_secret=self.secret)
        self.client = app.test_client()
        token = csrf_from(self.client.get("/staff/sign-in").get_data(as_text=True))
        response = self.client.post("/staff/sign-in", data={
            "email": email, "password": PASSWORD, "code": pyotp.TOTP(self.secret).at(clock()),
            "csrf_token": token})
        assert response.status_code == 303, response.get_data(as_text=True)

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, token_from: str | None = None, **kwargs):
        """POST with a CSRF token read from `token_from` (default: the staff home)."""
        payload = dict(data or {})
        payload["csrf_token"] = csrf_from(self.client.get(token_from or "/staff/").get_data(as_text=True))
        return self.client.post(path, data=payload, **kwargs)


@pytest.fixture
def staff_member(app, clock):
    """`staff_member("officer")`: a new signed-in staff member of that role (each call another person)."""
    made = []

    def factory(role: str = "officer") -> StaffMember:
        member = StaffMember(app, clock, role, f"{role}{len(made) + 1}@tra.example")
        made.append(member)
        return member

    return factory
