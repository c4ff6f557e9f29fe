"""Supporting documents: upload (type from content, atomic, SHA-256), list and download."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("documents", __name__, url_prefix="/documents")
