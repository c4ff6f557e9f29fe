"""Health for load balancers and monitors: JSON with the database status."""
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
