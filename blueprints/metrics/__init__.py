"""Prometheus metrics for the addresses METRICS_ALLOWED names (web.observability)."""

from __future__ import annotations

from flask import Blueprint

from web.access import access
from web.observability import metrics_page

bp = Blueprint("metrics", __name__, url_prefix="/metrics")


@bp.route("", strict_slashes=False)
@access(public=True, always_open=True)
def metrics():
    return metrics_page()
