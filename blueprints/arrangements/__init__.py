"""Payment arrangements: a proposed schedule for a balance owing, checked against the program's rules."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("arrangements", __name__, url_prefix="/arrangements")

from . import views  # noqa: E402,F401  (routes register on bp)
