"""Renewal of a program's licence or registration."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("renewals", __name__, url_prefix="/renewals")
