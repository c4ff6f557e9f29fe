"""The account's request history: everything submitted through self-service, with its reference and status."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("requests", __name__, url_prefix="/requests")
