"""What each account route needs, for the permission table of tests/test_delegation.py
and the authorization matrix. The need is the route's own declaration
(`@account_route(...)`, web.access), read from the routes: nothing here restates it.
A module per feature may add:

- `extend(db, account, now, table)`: what its URLs name (an id, a reference),
  made on the test account and added to the test table;
- `OBJECT_NEEDS`: endpoint -> the permissions the object the table names needs
  besides, where that is narrower than the route's declaration (one request's page
  lets in anyone who makes some kind of request; the table's request is a return).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from flask import Flask


def _modules():
    return [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]


@functools.cache
def routes() -> Flask:
    """An app with the application's routes alone (no database, no settings)."""
    from app import register_routes

    app = Flask("routes")
    register_routes(app)
    return app


def declared() -> dict[str, frozenset[str]]:
    """endpoint -> the permissions its `@account_route` declares (any one will do)."""
    from web.access import rule_for_endpoint

    app = routes()
    with app.app_context():
        needs = {rule.endpoint: rule_for_endpoint(rule.endpoint).account for rule in app.url_map.iter_rules()}
    return {endpoint: frozenset(need.permissions) for endpoint, need in needs.items() if need is not None}


def object_needs() -> dict[str, set[str]]:
    return {endpoint: set(p) for module in _modules() for endpoint, p in getattr(module, "OBJECT_NEEDS", {}).items()}


def collected() -> dict[str, set[str]]:
    """endpoint -> the permissions any one of which reaches what the table's URL names."""
    needs = {endpoint: set(permissions) for endpoint, permissions in declared().items()}
    for endpoint, narrower in object_needs().items():
        needs[endpoint] &= narrower
    return needs


def extend_table(db, account, now, table: dict) -> None:
    for module in _modules():
        extend = getattr(module, "extend", None)
        if extend is not None:
            extend(db, account, now, table)
