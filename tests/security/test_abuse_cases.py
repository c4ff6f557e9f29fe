"""Abuse cases (issue 17, docs/security.md "Abuse cases"): a rule turned against the
person it protects, each written as the attacker acts."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bench.server import portal_server
from bench.server import request as send
from models import RecoveryCode, User
from tests.accounts_factory import sessionmaker_of
from tests.conftest import PASSWORD, empty_database, make_user, outbox
from tests.test_identity import code_now, secret_from, text_of

FORWARDED_HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "X-Forwarded-Protocol": "ssl"}


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_forwarded_https_headers_are_believed_only_from_a_proxy_the_settings_name(db_backend, request, tmp_path,
                                                                                    trusted_proxies):
    """Abuse case 9 (ASVS 5.0 3.4.1, 13.2.x): under gunicorn as `make run` starts it, a
    process on the same host (or a proxy that passes the header through) says
    "X-Forwarded-Proto: https" over plain HTTP. gunicorn believes such headers from
    127.0.0.1 by default, and the portal then sent HSTS for a connection that was not
    secure. They are believed only when TRUSTED_PROXY_COUNT says a proxy stands in front."""
    database_url = empty_database(db_backend, request, tmp_path / "db")
    with portal_server(database_url, workers=1, threads=2,
                       extra_env={"TRUSTED_PROXY_COUNT": str(trusted_proxies)}) as base_url:
        status, plain, _ = send(base_url, "GET", "/auth/sign-in")
        assert status == 200 and "strict-transport-security" not in plain
        status, forwarded, _ = send(base_url, "GET", "/auth/sign-in", headers=FORWARDED_HTTPS)
        assert status == 200
        assert ("strict-transport-security" in forwarded) == bool(trusted_proxies), forwarded


@pytest.mark.parametrize("password", [None, "", "not-the-password-at-all-1"])
def test_a_stolen_session_cannot_turn_on_two_step_sign_in_with_the_thiefs_authenticator(app, client, auth, clock,
                                                                                       password):
    """Abuse case 4 (ASVS 5.0 6.4.3, 7.5.1): with only the owner's session cookie, the thief
    opens the set-up page, adds its key to their own authenticator and sends a good code.
    Without the owner's password nothing changes: two-step stays off, no recovery codes are
    shown, no email says it is on, and the owner signs in with the password alone as before."""
    user_id = make_user(app)
    auth.sign_in()
    secret = secret_from(text_of(client.get("/profile/two-factor")))
    form = {"code": code_now(secret, clock)} | ({} if password is None else {"password": password})
    response = auth.post("/profile/two-factor", form)
    assert response.status_code == 400
    page = text_of(response)
    assert 'id="recovery-codes"' not in page
    assert "Enter your password" in page or "Your password is not correct" in page
    with sessionmaker_of(app)() as db:
        owner = db.get(User, user_id)
        assert owner.totp_secret is None and owner.totp_enabled_at is None
        assert db.scalar(select(func.count()).select_from(RecoveryCode)) == 0
    assert [mail.subject for mail in outbox(app)] == []
    # The owner, with the password, can still turn it on (the same key, held in the session).
    clock.advance(seconds=30)
    response = auth.post("/profile/two-factor", {"password": PASSWORD, "code": code_now(secret, clock)})
    assert response.status_code == 200 and "Two-step sign-in is on" in text_of(response)
