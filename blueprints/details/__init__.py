"""The account's details: addresses and contacts, with optimistic locking and a change history."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("details", __name__, url_prefix="/details")
