"""The application factory."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, g, session
from flask_compress import Compress
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

import config
from domain.clock import system_now
from domain.db import make_engine
from domain.outbox import sender_from_config
from domain.service_hours import schedule_from_config
from models import User
from web import access, assets, errors, headers, observability, service, templating, uploads
from web.converters import CONVERTERS
from web.database import close_db, get_db
from web.follow import FollowSeeOther
from web.mailer import OutboxThread
from web.sessions import ServerSessionInterface

csrf = CSRFProtect()
compress = Compress()
login_manager = LoginManager()


ConfigurationError = config.ConfigurationError  # raised here too, for the settings only production refuses


def create_app(test_config: dict | None = None) -> Flask:
    # No default static route: web.assets serves static/ under content-hashed names.
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    app.config.from_mapping(config.from_environment())
    if test_config:
        app.config.update(test_config)
    _refuse_unsafe_production(app)
    app.config.update(_fixed_settings())
    # One round trip per htmx form (web.follow). Flask's documented way to wrap the app
    # in WSGI middleware; Flask's types declare wsgi_app a method, which mypy will not
    # let be replaced.
    app.wsgi_app = FollowSeeOther(app.wsgi_app)  # type: ignore[method-assign]
    if app.config["TRUSTED_PROXY_COUNT"]:
        # Outermost, so the followed GET (web.follow) sees the client's own address too.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=app.config["TRUSTED_PROXY_COUNT"], x_proto=app.config["TRUSTED_PROXY_COUNT"]
        )
    _set_up_services(app)
    _set_up_sessions_and_sign_in(app)
    _add_request_steps(app)
    errors.register(app)
    templating.init_app(app)
    register_routes(app)

    import commands

    commands.register(app)
    return app


def _fixed_settings() -> dict:
    """Settings no deployment changes."""
    return dict(
        # Pages and fragments: Brotli when the browser takes it (all current ones
        # over HTTPS), else gzip. Quality 6 is where Brotli stops paying for its time
        # on pages of a few kilobytes (docs/performance.md). Streams (CSV exports)
        # go as they are. Static files come compressed already (web.assets).
        COMPRESS_ALGORITHM=["br", "gzip"],
        COMPRESS_BR_LEVEL=6,
        COMPRESS_LEVEL=6,
        COMPRESS_MIN_SIZE=256,
        COMPRESS_STREAMS=False,
        COMPRESS_MIMETYPES=[
            "text/html",
            "text/css",
            "text/plain",
            "text/csv",
            "application/json",
            "application/javascript",
            "text/javascript",
            "image/svg+xml",
        ],
        # The access gate calls the CSRF check itself, after it has kept the form
        # of a person whose session timed out (see web.access.enforce).
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session, which has its own limits
        WTF_CSRF_HEADERS=["X-CSRFToken"],
        WTF_CSRF_SSL_STRICT=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )


def _set_up_services(app: Flask) -> None:
    """Password hashing and PIN lookup keys, the database, the clock, service hours,
    the mail sender, the static assets and the outbox thread, in app.extensions."""
    from domain import enrolment, passwords

    passwords.configure(app.config["ARGON2_TIME_COST"], app.config["ARGON2_MEMORY_KIB"])
    enrolment.configure(app.config["SECRET_KEY"], app.config.get("SECRET_KEY_FALLBACKS") or ())
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    engine = app.config.get("ENGINE") or make_engine(app.config["DATABASE_URL"])
    app.extensions["portal.engine"] = engine
    app.extensions["portal.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.extensions["portal.clock"] = app.config.get("CLOCK") or system_now
    app.extensions["portal.schedule"] = schedule_from_config(
        app.config["SERVICE_HOURS"], app.config["SERVICE_TIMEZONE"]
    )
    app.extensions["portal.mail_sender"] = app.config.get("MAIL_SENDER_OBJECT") or sender_from_config(app.config)
    static_dir = Path(app.root_path) / "static"
    app.extensions["portal.static_dir"] = static_dir
    assets.init_app(app, static_dir, Path(app.root_path) / "build" / "static")
    app.extensions["portal.csp"] = headers.content_security_policy(app.extensions["portal.inline_css_hash"])
    if app.config["OUTBOX_THREAD"]:
        outbox_thread = app.extensions["portal.outbox_thread"] = OutboxThread(app)
        app.before_request(outbox_thread.ensure_started)


def _set_up_sessions_and_sign_in(app: Flask) -> None:
    app.session_interface = ServerSessionInterface()
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.session_protection = None  # the server-side session does this job

    @login_manager.request_loader
    def load_signed_in_person(_request):
        user_id = getattr(session, "user_id", None)
        if user_id is None:
            return None
        held = g.get("session_person")  # loaded with the session row (web.sessions)
        user = held if held is not None and held.id == user_id else get_db().get(User, user_id)
        return user if user is not None and user.is_active else None


def _add_request_steps(app: Flask) -> None:
    """What runs around every request, in this order."""
    app.teardown_appcontext(close_db)
    observability.init_app(app)  # first and last: the request id, the request's log line and metrics
    app.before_request(uploads.apply_limit)  # before anything reads the body
    app.before_request(service.gate)
    app.before_request(access.enforce)
    # Compression runs last of the after-request steps (they run in reverse order of
    # registration), on the finished page or fragment.
    app.after_request(headers.drop_date)  # the very last step
    compress.init_app(app)
    app.after_request(headers.apply)


def _refuse_unsafe_production(app: Flask) -> None:
    if app.config["PORTAL_ENV"] == "production":
        key = app.config.get("SECRET_KEY") or ""
        if key == config.DEFAULT_SECRET or len(key) < 32:
            raise ConfigurationError("SECRET_KEY must be set to a random value of at least 32 characters in production")
        if app.config["MAIL_SENDER"] != "smtp":
            # The log sender writes whole messages, links included, to the log:
            # fine for the demo, never for real people's data.
            raise ConfigurationError("MAIL_SENDER must be 'smtp' in production")
        if not app.config["SESSION_COOKIE_SECURE"]:
            # Production is served over HTTPS only: the session cookie is `__Host-`
            # prefixed and Secure (ASVS 5.0 3.3.1), never sent in the clear.
            raise ConfigurationError("SESSION_COOKIE_SECURE must be on in production")
        base = urlsplit(app.config["PUBLIC_BASE_URL"] or "")
        if base.scheme != "https" or not base.hostname or base.hostname in ("127.0.0.1", "localhost", "::1"):
            # It goes into every emailed link: people must reach it, over HTTPS.
            raise ConfigurationError(
                "PUBLIC_BASE_URL must be the https address people use in production, like "
                f"https://tracs.example.ca; it is {app.config['PUBLIC_BASE_URL']!r}"
            )


def register_routes(app: Flask) -> None:
    """The URL converters, every blueprint and the start page: all the routes (the
    tests read the routes' declarations from an app that has these alone)."""
    app.url_map.converters.update(CONVERTERS)  # before any route names them

    from blueprints import access as manage_access
    from blueprints import (
        accounts,
        arrangements,
        auth,
        consents,
        details,
        direct_deposit,
        documents,
        enrol,
        filing,
        health,
        mail,
        messages,
        metrics,
        objections,
        pages,
        payments,
        profile,
        renewals,
        requests,
        staff,
        subscriptions,
        waivers,
    )

    app.register_blueprint(assets.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(profile.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(enrol.bp)
    app.register_blueprint(manage_access.bp)
    app.register_blueprint(consents.bp)
    for feature in (
        filing,
        documents,
        objections,
        waivers,
        arrangements,
        direct_deposit,
        renewals,
        details,
        requests,
        messages,
        mail,
        subscriptions,
        payments,
    ):
        app.register_blueprint(feature.bp)
    app.add_url_rule("/", endpoint="home", view_func=pages.home)
