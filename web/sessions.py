"""Server-side sessions behind Flask's `session`.

The cookie holds only a signed random id with its signing time; everything else
is a row in `auth_sessions`, so the server can end a session at any moment
(sign-out, password change, "sign out my other sessions", a staff action) and an
old cookie is worthless afterwards.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask import Flask, Request, Response, abort, g, request, session
from flask.sessions import SessionInterface, SessionMixin
from flask_login import current_user
from itsdangerous import BadData, BadSignature, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from werkzeug.datastructures import CallbackDict

from domain import sessions as store
from models import User
from web.database import get_db, write_at_end
from web.secret_key import secret_key

# Requests that carry this header (the session-status poll) are not user activity.
BACKGROUND_HEADER = "X-Background-Request"
# Answered without a session: static files, the health checks and the metrics. Neither reads the
# cookie nor, even when it answers an error page, writes one.
SESSIONLESS_PATHS = ("/static/", "/healthz", "/metrics")
# A visitor who is not signed in and has nothing kept gets no row: the secret behind
# their CSRF token travels in a signed cookie of its own (the double-submit pattern,
# signed), so a stranger's page views never write to the database.
VISITOR_SALT = "portal.visitor-cookie.v1"
VISITOR_SECONDS = 2 * 60 * 60
VISITOR_ONLY_KEYS = frozenset({"csrf_token"})


class ServerSession(CallbackDict, SessionMixin):
    def __init__(
        self,
        initial=None,
        *,
        sid=None,
        user_id=None,
        authenticated_at=None,
        created_at=None,
        last_activity_at=None,
        expired_reason=None,
        expired_user_id=None,
        expired_csrf_token=None,
    ):
        def on_update(_self):
            _self.modified = True

        super().__init__(initial or {}, on_update)
        self.sid = sid
        self.user_id = user_id
        self.authenticated_at = authenticated_at
        self.created_at = created_at
        self.last_activity_at = last_activity_at  # this request's, when it counts as activity
        # Why the session the cookie pointed to is no longer live ("idle", "signed-out", ...).
        self.expired_reason = expired_reason
        self.expired_user_id = expired_user_id
        # The ended session's own CSRF secret: a form sent into a timed-out session
        # is kept for later only when its token is that session's (web.access).
        self.expired_csrf_token = expired_csrf_token
        self.modified = False
        self.visitor_secret: str | None = None  # the CSRF secret the visitor cookie brought
        self.rotate_requested = False
        self.end_requested: str | None = None

    @property
    def record_id(self) -> str | None:
        return store.sid_hash(self.sid) if self.sid else None

    def begin_authenticated(self, user_id: int, now: datetime, *, new_csrf_token: bool = False) -> None:
        """Sign-in or re-confirmation: a new id, so a fixed or stolen id is useless.
        A re-confirmation keeps the CSRF token, so forms already open in the page
        (and in other tabs) can still be sent."""
        self.user_id, self.authenticated_at = user_id, now
        if new_csrf_token:
            self.pop("csrf_token", None)
        self.rotate_requested = True
        self.modified = True

    def end(self, reason: str) -> None:
        self.end_requested = reason
        self.modified = True


def server_session() -> ServerSession:
    """Flask's `session` for this request, as ServerSessionInterface opened it (Flask
    types it SessionMixin, without this interface's id, times and methods)."""
    if not isinstance(session, ServerSession):
        raise RuntimeError("the app's session interface is ServerSessionInterface")
    return session


def _data_of(row) -> dict:
    try:
        data = json.loads(row.data or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def reauth_remaining(session: ServerSession, now: datetime, reauth_seconds: int) -> int:
    """Seconds until the hourly re-confirmation is due (0 when it is)."""
    if session.authenticated_at is None:
        return 0
    return max(0, int(reauth_seconds - (now - session.authenticated_at).total_seconds()))


def count_as_activity(session: ServerSession, now: datetime) -> None:
    """A background request that still counts ("Stay signed in")."""
    record_id = session.record_id  # None while the session has no row
    if record_id is not None:
        session.last_activity_at = now
        write_at_end(("session-activity", record_id), *store.activity_write(record_id, now))


def limits_from(config) -> store.Limits:
    return store.Limits(
        idle=timedelta(seconds=config["SESSION_IDLE_SECONDS"]),
        reauth=timedelta(seconds=config["SESSION_REAUTH_SECONDS"]),
        maximum=timedelta(seconds=config["SESSION_MAX_SECONDS"]),
    )


class ServerSessionInterface(SessionInterface):
    salt = "portal.session-cookie.v1"

    def cookie_name(self, app: Flask) -> str:
        # The __Host- prefix pins the cookie to this host and path "/", but browsers
        # accept it only over https with Secure set.
        return "__Host-session" if app.config["SESSION_COOKIE_SECURE"] else "portal_session"

    def _signer(self, app: Flask) -> TimestampSigner:
        return TimestampSigner(secret_key(app), salt=self.salt)

    def visitor_cookie_name(self, app: Flask) -> str:
        return "__Host-visitor" if app.config["SESSION_COOKIE_SECURE"] else "portal_visitor"

    def _visitor(self, app: Flask, request: Request, **state) -> ServerSession:
        """A session with no row: the visitor cookie's CSRF secret, when it is valid."""
        visitor = ServerSession(**state)
        raw = request.cookies.get(self.visitor_cookie_name(app))
        if raw:
            try:
                secret = URLSafeTimedSerializer(secret_key(app), salt=VISITOR_SALT).loads(raw, max_age=VISITOR_SECONDS)
            except BadData:
                secret = None
            if isinstance(secret, str) and secret:
                visitor.visitor_secret = secret
                dict.__setitem__(visitor, "csrf_token", secret)  # not a change: it came with the request
        return visitor

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        raw = request.cookies.get(self.cookie_name(app))
        if request.path.startswith(SESSIONLESS_PATHS):
            # Static files and health checks need no session: no database work.
            return ServerSession()
        if not raw:
            return self._visitor(app, request)
        try:
            sid = self._signer(app).unsign(raw, max_age=app.config["SESSION_MAX_SECONDS"]).decode()
        except (BadSignature, UnicodeDecodeError):
            return self._visitor(app, request, expired_reason="unknown")
        now = app.extensions["portal.clock"]()
        # The request's own database session (the app context is already pushed):
        # the person signed in comes with the row, in one query, for the user loader.
        db = get_db()
        try:
            row, found_person, reason = store.load(db, sid, now, limits_from(app.config))
        except OperationalError as error:
            # The database is unreachable or locked: no session can be read. Noted for
            # web.errors, which answers 503 once the request is under Flask's error
            # handling (an error raised here would escape it as a bare 500).
            g.database_error = error
            g.database_unavailable = True
            return ServerSession()
        if reason is not None or row is None:  # no row comes with reason "unknown"
            if row is not None and row.ended_at is None:
                db.commit()  # a session found idle or too old here was ended now, for good
            return self._visitor(
                app,
                request,
                expired_reason=reason,
                expired_user_id=row.user_id if row else None,
                expired_csrf_token=_data_of(row).get("csrf_token") if row else None,
            )
        last_activity_at = row.last_activity_at
        if request.headers.get(BACKGROUND_HEADER) is None:
            last_activity_at = now
            touched = store.touch(row, now)
            if touched is not None:
                write_at_end(("session-activity", row.id), *touched)
        # Held for the user loader (app.py): the person came with the row.
        g.session_person = found_person
        return ServerSession(
            _data_of(row),
            sid=sid,
            user_id=row.user_id,
            authenticated_at=row.authenticated_at,
            created_at=row.created_at,
            last_activity_at=last_activity_at,
        )

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSession):
            return  # Flask's null session, which open_session never gives: nothing to keep
        if request.path.startswith(SESSIONLESS_PATHS):
            # Served with no session (open_session): an error page here must not
            # start one over the person's cookie.
            return
        if g.get("database_unavailable"):
            # The answer is the 503 of web.errors: nothing can be kept, and the
            # cookie stays as it was, so the same session works when the database is back.
            return
        if session.end_requested:
            self._end(app, session, response, session.end_requested)
            return
        if session.sid is None and not session.rotate_requested and set(session) <= VISITOR_ONLY_KEYS:
            # A visitor with nothing kept: no row. A new CSRF secret goes in the visitor
            # cookie. A cookie naming an ended session is left alone: it cannot revive
            # it, and the next request still learns why it ended (an idle time-out keeps
            # the form that request carries for the same person).
            self._keep_visitor_secret(app, session, response)
            return
        if not (session.modified or session.rotate_requested or session.sid is None):
            return
        self._keep(app, session, response)

    def _end(self, app: Flask, session: ServerSession, response: Response, reason: str) -> None:
        """The session's row ends for `reason` (unless another request ended it first) and its cookie goes."""
        if session.sid:
            with app.extensions["portal.sessionmaker"]() as db:
                row = db.get(store.AuthSession, session.record_id)
                if row is not None and row.ended_at is None:
                    store.end(row, app.extensions["portal.clock"](), reason)
                db.commit()
        response.delete_cookie(
            self.cookie_name(app),
            path="/",
            secure=app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Strict",
        )

    def _keep_visitor_secret(self, app: Flask, session: ServerSession, response: Response) -> None:
        """A visitor's new CSRF secret, signed, in the visitor cookie."""
        secret = session.get("csrf_token")
        if secret and secret != session.visitor_secret:
            response.set_cookie(
                self.visitor_cookie_name(app),
                URLSafeTimedSerializer(secret_key(app), salt=VISITOR_SALT).dumps(secret),
                max_age=VISITOR_SECONDS,
                path="/",
                secure=app.config["SESSION_COOKIE_SECURE"],
                httponly=True,
                samesite="Strict",
            )

    def _keep(self, app: Flask, session: ServerSession, response: Response) -> None:
        """The session's data in its row; a new row and cookie when it starts or rotates."""
        data = json.dumps(dict(session), separators=(",", ":"))
        with app.extensions["portal.sessionmaker"]() as db:
            old = db.get(store.AuthSession, session.record_id) if session.sid else None
            if old is not None and old.ended_at is not None:
                return  # ended by another request (another tab signed out): do not revive it
            if session.rotate_requested or old is None:
                self._start(app, db, session, response, data, old)
            else:
                old.data = data
            db.commit()

    def _start(
        self,
        app: Flask,
        db: Session,
        session: ServerSession,
        response: Response,
        data: str,
        old: store.AuthSession | None,
    ) -> None:
        """A new row, ending the old one (if any), and its id in the session cookie."""
        now = app.extensions["portal.clock"]()
        if old is not None:
            store.end(old, now, "rotated")
        # A re-confirmation keeps the session's start, so the absolute limit
        # counts from sign-in; a sign-in starts afresh.
        same_person = old is not None and old.user_id is not None and old.user_id == session.user_id
        started = old.created_at if old is not None and same_person else None
        sid, _row = store.create(
            db,
            now,
            data=data,
            user_id=session.user_id,
            authenticated_at=session.authenticated_at,
            user_agent=request.headers.get("User-Agent"),
            created_at=started,
        )
        session.sid = sid
        session.rotate_requested = False
        cookie = self._signer(app).sign(sid).decode()
        # Strict: no request another site starts (a link, a form, a hidden
        # window) carries the session. That stops cross-site request forgery at
        # the browser, and BREACH (guessing a secret from the size of compressed
        # pages the attacker makes the victim's browser ask for): pages are
        # compressed (docs/performance.md). The portal's emails carry no links
        # that need a session, so nothing is lost.
        response.set_cookie(
            self.cookie_name(app),
            cookie,
            path="/",
            secure=app.config["SESSION_COOKIE_SECURE"],
            httponly=True,
            samesite="Strict",
        )


def signed_in_user() -> User:
    """The signed-in person as a database object, for a view that changes them or hands
    them to a domain function. Every request signs in with a light copy read with the
    session (models.SignedInPerson); this loads the row when a view needs more."""
    person = current_user._get_current_object()
    if isinstance(person, User):
        return person
    user = get_db().get(User, person.id)
    if user is None:  # removed since the session was read: as if signed out
        abort(401)
    return user
