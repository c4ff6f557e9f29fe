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
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import flask
import pytest
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy import select
from werkzeug.routing import Rule

from app import create_app
from domain import passwords
from domain.clock import FrozenClock
from domain.db import make_engine
from migrations.runner import upgrade
from models import Base, OutboxEmail, User

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Monday 23 November 2026, 11:00 Mountain time: inside service hours.
START = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery-staple-9"


# --- What every app the suite makes shares -------------------------------------------
# The suite makes an app for each test, a few thousand in each worker. Compiling the
# same templates and the same URL rules again for each was a third of a database
# test's time. Both are compiled once per worker here; what is kept is exactly what
# would be compiled anew, so every app still behaves as one made alone.


class SharedTemplateCode(BytecodeCache):
    """Compiled templates, for every app of this worker. Jinja checks each template's
    source checksum before using its code, so an edited template is compiled anew."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


class SharedBuilderRule(Rule):
    """A URL rule whose url_for builder is compiled once per worker for every rule of
    the same shape. Werkzeug compiles each builder from the rule's parts to a function
    of the rule (it reaches the rule's converters through its first argument), so the
    function made for one app's rule is the one it would make for another's: the key
    is everything `Rule._compile_builder` reads."""

    _builders: ClassVar[dict[tuple, object]] = {}

    def _compile_builder(self, append_unknown: bool = True):
        defaults = self.defaults or {}
        resolved = tuple(
            (name, self._converters[name].to_url(value) if name in self._converters else None)
            for name, value in defaults.items()
        )
        key = (append_unknown, self.rule, tuple(self._trace), resolved)
        if key not in self._builders:
            self._builders[key] = super()._compile_builder(append_unknown)
        return self._builders[key]


flask.Flask.jinja_options = {**flask.Flask.jinja_options, "bytecode_cache": SharedTemplateCode()}
flask.Flask.url_rule_class = SharedBuilderRule


def pytest_addoption(parser):
    parser.addoption(
        "--backend", action="append", choices=["sqlite", "postgresql"], help="database backends to run (default: both)"
    )
    parser.addoption(
        "--long", action="store_true", help="also run the long load and fault tests (marked `long`; `make proof`)"
    )


# Folders of long tests (seconds to a minute each: fuzzing, load, faults, browsers; and the
# HTML check, which crawls three sets of pages and starts a JVM), and the files whose tests
# take longest of all (measured: docs/testing.md). They are shared out first, so no worker is
# left running them alone at the end.
LONG_FOLDERS = ("tests/security/", "tests/reliability/", "tests/browser/", "tests/test_html_valid.py")
LONGEST_FILES = (
    "tests/security/test_input_fuzz.py",
    "tests/reliability/test_load.py",
    "tests/browser/test_back_office_journey.py",
    "tests/browser/test_filing_and_requests_journey.py",
)


def _long_first(items: list, workers: int) -> list:
    """The items in the order that shares the long tests out evenly between `workers`.

    pytest-xdist's worksteal schedule (`make test`) gives each worker a contiguous block
    of the list up front (the first len // workers items to one, the next share of the
    rest to the next, and so on), and a worker that runs out takes the tail of another's
    block. So each block starts with its share of the long tests, dealt in turn, longest
    first; short tests fill the blocks and are what moves between workers at the end."""

    def weight(item):
        return (not item.nodeid.startswith(LONGEST_FILES), not item.nodeid.startswith(LONG_FOLDERS))

    ordered = sorted(items, key=weight)
    long = [item for item in ordered if item.nodeid.startswith(LONG_FOLDERS)]
    short = ordered[len(long) :]
    blocks: list[list] = [[] for _ in range(workers)]
    for index, item in enumerate(long):
        blocks[index % workers].append(item)
    left, dealt = len(items), []
    for number, block in enumerate(blocks):
        size = left // (workers - number)  # as worksteal divides what is pending
        take = max(0, size - len(block))
        dealt += block + short[:take]
        short, left = short[take:], left - size
    return dealt + short


def pytest_collection_modifyitems(config, items):
    """Tests marked `long` (the load run, the slow fault drills) are deselected, not
    skipped, unless --long is given: CI fails on a skip, and runs only the fast part.
    The rest are ordered to share the long tests out between the workers."""
    if not config.getoption("long"):
        chosen = [item for item in items if item.get_closest_marker("long") is None]
        if len(chosen) != len(items):
            config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("long")])
            items[:] = chosen
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    items[:] = _long_first(items, workers)


# --- What could not run here ----------------------------------------------------------
# Outside CI a missing PostgreSQL, Chromium or root skips the tests that need it. Say
# so where it cannot be missed, at the start and at the end, with the command that
# makes them run (under CI a skip fails the run instead: .ci/run).
CHROMIUM = Path("/usr/bin/chromium")
SERVICES_COMMAND = "sudo make test-services"
JAVA = Path(shutil.which("java") or "/usr/bin/java")
VNU_JAR = Path(__file__).resolve().parent.parent / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"


def missing_html_checker() -> str | None:
    """Why the Nu Html Checker (tests/test_html_valid.py) cannot run here, or None."""
    if not JAVA.exists():
        return (
            "Java is not installed: the HTML validity test (tests/test_html_valid.py) is skipped. "
            f"To run it: {SERVICES_COMMAND}"
        )
    if not VNU_JAR.exists():
        return (
            "The Nu Html Checker (npm's vnu-jar) is not in node_modules: the HTML validity test "
            "(tests/test_html_valid.py) is skipped. To run it: make test (it installs the dev dependencies)"
        )
    return None


def missing_here() -> list[str]:
    """What this machine lacks for the whole suite, each with the tests it leaves out."""
    import psycopg

    missing = []
    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError:
        where = urlsplit(POSTGRES_ADMIN_URL)
        missing.append(
            f"PostgreSQL does not answer at {where.hostname}:{where.port or 5432}: "
            f"every test on PostgreSQL (about half the suite) is skipped. To run them: {SERVICES_COMMAND}"
        )
    if not CHROMIUM.exists():
        missing.append(
            f"Chromium is not at {CHROMIUM}: the browser tests (tests/browser) are skipped. "
            f"To run them: {SERVICES_COMMAND}"
        )
    if not Path("/usr/sbin/nginx").exists():
        missing.append(
            f"nginx is not installed: the two-servers-behind-nginx test (tests/test_deploy.py) is "
            f"skipped. To run it: {SERVICES_COMMAND}"
        )
    if missing_html_checker():
        missing.append(missing_html_checker())
    if os.geteuid() != 0:
        missing.append(
            "Not root: the full-disk test (tests/reliability/test_faults.py) cannot mount its small "
            "filesystem and is skipped. To run it: sudo make test"
        )
    return missing


def _controller(config) -> bool:
    return not hasattr(config, "workerinput") and not UNDER_CI


def pytest_sessionstart(session):
    if not _controller(session.config):
        return
    session.config.stash[_MISSING] = missing = missing_here()
    if missing:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line("Some tests cannot run on this machine:", yellow=True, bold=True)
        for line in missing:
            reporter.write_line(f"  - {line}", yellow=True)


def pytest_terminal_summary(terminalreporter, config):
    if not _controller(config):
        return
    skipped = [report for report in terminalreporter.stats.get("skipped", []) if not hasattr(report, "wasxfail")]
    missing = config.stash.get(_MISSING, [])
    if not skipped and not missing:
        return
    terminalreporter.write_sep("=", f"{len(skipped)} tests could not run here", yellow=True, bold=True)
    for line in missing:
        terminalreporter.write_line(f"  - {line}", yellow=True)
    reasons = Counter(
        " ".join(str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr).split())
        for report in skipped
    )
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"  {count:5d} skipped: {reason[:160]}")


_MISSING = pytest.StashKey[list]()


def pytest_generate_tests(metafunc):
    if "db_backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("backend") or ["sqlite", "postgresql"]
        metafunc.parametrize("db_backend", chosen, scope="session")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


class PostgresDatabase:
    """This worker's PostgreSQL database, migrated once and emptied before each test.

    Emptying deletes every row with triggers off (`session_replication_role`: the
    append-only triggers and the foreign keys' checks) and restarts every sequence:
    a few milliseconds, where TRUNCATE of every table took 100-200 ms even with the
    tables empty, a fifth of each PostgreSQL test. Commits don't wait for the disk
    (`synchronous_commit` off, for this database only): a test database is thrown
    away, and a commit that waited for its write-ahead log cost a flush each."""

    def __init__(self, admin_url: str):
        import psycopg

        self.admin_url, self.name = admin_url, f"portal_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
            conn.execute(f'ALTER DATABASE "{self.name}" SET synchronous_commit = off')
        self.url = admin_url.rsplit("/", 1)[0] + f"/{self.name}"
        upgrade(self.url)
        self._conn = psycopg.connect(self.url, autocommit=True)
        # The `app` fixture's engine, kept for the run: its cache of compiled SQL is
        # about a tenth of a test's time when each test's app starts it empty.
        self.engine = make_engine(self.url)
        tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
        if self._conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            self._empty = (
                ["SET LOCAL session_replication_role = replica"]
                + [f"DELETE FROM {table}" for table in tables]
                + ["SELECT setval(oid::regclass, 1, false) FROM pg_class WHERE relkind = 'S'"]
            )
        else:  # only a superuser may turn triggers off; TRUNCATE is not UPDATE or DELETE, so they allow it
            self._empty = [f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"]

    def empty(self) -> None:
        with self._conn.transaction():
            for statement in self._empty:
                self._conn.execute(statement)

    def drop(self) -> None:
        import psycopg

        self.engine.dispose()
        self._conn.close()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database():
    import psycopg

    try:
        database = PostgresDatabase(POSTGRES_ADMIN_URL)
    except psycopg.OperationalError as error:
        if UNDER_CI:
            pytest.fail(f"PostgreSQL is required under CI and is not reachable: {error}")
        pytest.skip(f"PostgreSQL not reachable: {error}")
    yield database
    database.drop()


@pytest.fixture(scope="session")
def postgres_url(postgres_database):
    return postgres_database.url


def empty_database(db_backend: str, request, folder) -> str:
    """A clean, migrated database: a copy of the SQLite template in `folder`, or this
    worker's PostgreSQL database emptied."""
    if db_backend == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "portal.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    database = request.getfixturevalue("postgres_database")
    database.empty()
    return database.url


@pytest.fixture
def fresh_database(db_backend, request, tmp_path):
    """A database never migrated: a new SQLite file, or a new PostgreSQL database."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    request.getfixturevalue("postgres_database")  # PostgreSQL is there (or the test is skipped)
    import psycopg

    name = f"portal_fresh_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(db_backend, request, tmp_path):
    return empty_database(db_backend, request, tmp_path)


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
def app(app_config, request):
    """The test's app. On PostgreSQL it uses the worker's engine (its pool emptied after
    each test), so SQL compiled once serves every test; another app a test makes (`app_with`,
    `create_app(app_config)`) has an engine of its own, as another worker would."""
    config = app_config
    if app_config["DATABASE_URL"].startswith("postgresql"):
        database = request.getfixturevalue("postgres_database")
        if app_config["DATABASE_URL"] == database.url:
            config = {**app_config, "ENGINE": database.engine}
    application = create_app(config)
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


def make_user(
    app,
    email="taxpayer@example.com",
    password=PASSWORD,
    name="Jordan Example",
    verified=True,
    totp_secret=None,
    staff_role=None,
) -> int:
    clock = app.extensions["portal.clock"]
    with app.extensions["portal.sessionmaker"]() as session:
        user = User(
            name=name,
            email=email,
            password_hash=passwords.hash_password(password),
            created_at=clock(),
            password_changed_at=clock(),
            email_verified_at=clock() if verified else None,
            staff_role=staff_role,
            totp_secret=totp_secret,
            totp_enabled_at=clock() if totp_secret else None,
        )
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
        response = self.client.post(
            "/auth/sign-in", data={"email": email, "password": password, "next": next_url, "csrf_token": self.token()}
        )
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
        self.id = make_user(
            app, email=email, name=f"Staff {role.capitalize()}", staff_role=role, totp_secret=self.secret
        )
        self.client = app.test_client()
        token = csrf_from(self.client.get("/staff/sign-in").get_data(as_text=True))
        response = self.client.post(
            "/staff/sign-in",
            data={
                "email": email,
                "password": PASSWORD,
                "code": pyotp.TOTP(self.secret).at(clock()),
                "csrf_token": token,
            },
        )
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
