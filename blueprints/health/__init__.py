"""Health for load balancers and monitors. `/healthz` is liveness (the process and its
database answer); `/healthz/ready` is readiness: the database answers and its schema is
the one this code needs, so a server is sent traffic only once `flask db-upgrade` ran."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from web.access import access

bp = Blueprint("health", __name__, url_prefix="/healthz")


@bp.route("", strict_slashes=False)
@access(public=True, always_open=True)
def healthz():
    try:
        with current_app.extensions["portal.engine"].connect() as connection:
            connection.execute(text("SELECT 1"))
        return jsonify(status="ok", database="ok")
    except SQLAlchemyError:
        return jsonify(status="unavailable", database="unreachable"), 503


@bp.route("/ready")
@access(public=True, always_open=True)
def ready():
    from migrations.runner import current, head

    needed = current_app.extensions.setdefault("portal.schema_head", head())
    try:
        found = current(current_app.extensions["portal.engine"])
    except SQLAlchemyError:
        return jsonify(status="unavailable", database="unreachable", schema=None, needed=needed), 503
    if found != needed:
        return jsonify(status="unavailable", database="ok", schema=found, needed=needed), 503
    return jsonify(status="ready", database="ok", schema=found, needed=needed)
