"""Abuse cases (issue 17, docs/security.md "Abuse cases"): a rule turned against the
person it protects, each written as the attacker acts."""
from __future__ import annotations

import pytest

from bench.server import portal_server
from bench.server import request as send
from tests.conftest import empty_database

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
