"""Requests to waive penalties and interest picked from the ledger."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("waivers", __name__, url_prefix="/waivers")
