"""Returns and claims: program forms with the server's calculation, drafts that save
themselves, idempotent submission, amended returns."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("filing", __name__, url_prefix="/filing")

from . import views  # noqa: E402,F401  (routes register on bp)
