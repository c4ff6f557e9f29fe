"""Static files under content-hashed names, cached for a year.

`asset_url("css/site.css")` gives `/static/css/site.<hash>.css`; the hash changes
when the file does, so a browser never keeps a stale copy and never asks twice.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, abort, current_app, send_from_directory

bp = Blueprint("assets", __name__)
ONE_YEAR = 31536000


def build_manifest(static_folder: Path) -> dict[str, str]:
    """Logical name -> hashed name, for every file under static/ (vendor/ included)."""
    manifest = {}
    for path in sorted(static_folder.rglob("*")):
        if path.is_file():
            logical = path.relative_to(static_folder).as_posix()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            stem, dot, ext = logical.rpartition(".")
            manifest[logical] = f"{stem}.{digest}.{ext}" if dot else f"{logical}.{digest}"
    return manifest


def asset_url(logical: str) -> str:
    hashed = current_app.extensions["portal.assets"].get(logical)
    if hashed is None:
        raise LookupError(f"no static file {logical!r}: run `make setup` to install vendor files")
    return f"/static/{hashed}"


@bp.route("/static/<path:hashed>")
def asset(hashed: str):
    reverse = current_app.extensions["portal.assets_reverse"]
    logical = reverse.get(hashed)
    if logical is None:
        abort(404)
    response = send_from_directory(current_app.extensions["portal.static_dir"], logical, max_age=ONE_YEAR)
    response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    return response
