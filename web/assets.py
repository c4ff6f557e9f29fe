"""Static files under content-hashed names, cached for a year, minified and
pre-compressed.

`asset_url("js/portal.js")` gives `/static/js/portal.<hash>.js`; the hash changes
when the file does, so a browser never keeps a stale copy and never asks twice.

The build (`flask build-assets`, run by `make setup`) minifies the portal's own
CSS and JavaScript (rcssmin, rjsmin; vendor files come minified) and writes each
text file compressed with Brotli at its highest quality and with gzip beside it,
under `build/static/`, named by the same hash. A worker reads those at start; when
the build is missing or older than a file, it does the same work in memory once, so
a checkout that skipped the build still serves compressed files.

The stylesheet is small enough to travel inside every page (`inline_css`): on a
slow link each render-blocking request costs a whole round trip before the first
paint, so the page paints after one. The Content Security Policy names its hash.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import mimetypes
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import brotli
import rcssmin
import rjsmin
from flask import Blueprint, Response, abort, current_app, request

from domain.files import write_atomically

bp = Blueprint("assets", __name__)
ONE_YEAR = 31536000
COMPRESSIBLE = {".css", ".js", ".svg", ".json", ".txt", ".map"}
ENCODINGS = ("br", "gzip")  # in order of preference when a browser accepts both
SUFFIXES = {"br": "br", "gzip": "gz"}  # of the built files, as nginx's gzip_static expects


@dataclass(frozen=True)
class Asset:
    logical: str
    hashed: str
    mimetype: str
    content: bytes
    encoded: dict[str, bytes]  # "br" / "gzip" -> bytes, for compressible files


def minify(logical: str, raw: bytes) -> bytes:
    if logical.startswith("vendor/"):
        return raw  # published minified; never rewritten
    if logical.endswith(".css"):
        return rcssmin.cssmin(raw.decode("utf-8")).encode("utf-8")
    if logical.endswith(".js"):
        return rjsmin.jsmin(raw.decode("utf-8")).encode("utf-8")
    return raw


def hashed_name(logical: str, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()[:12]
    stem, dot, ext = logical.rpartition(".")
    return f"{stem}.{digest}.{ext}" if dot else f"{logical}.{digest}"


def compress(content: bytes, encoding: str) -> bytes:
    if encoding == "br":
        return brotli.compress(content, quality=11)
    return gzip.compress(content, compresslevel=9, mtime=0)  # mtime 0: the same bytes every build


_loaded: dict[tuple, dict[str, Asset]] = {}  # one load per process for the same files (tests make many apps)


def _files(static_dir: Path) -> list[Path]:
    return [path for path in sorted(static_dir.rglob("*")) if path.is_file() and not path.name.startswith(".")]


def load(static_dir: Path, build_dir: Path | None, *, write: bool = False) -> dict[str, Asset]:
    """Every file under static/ (vendor/ included), by logical name. Compressed
    bytes come from `build_dir` when it holds them; else they are made here (and
    written there when `write`)."""
    files = _files(static_dir)
    key = (static_dir, build_dir, tuple((p, p.stat().st_mtime_ns, p.stat().st_size) for p in files))
    if not write and key in _loaded:
        return _loaded[key]
    assets = {}
    for path in files:
        logical = path.relative_to(static_dir).as_posix()
        content = minify(logical, path.read_bytes())
        hashed = hashed_name(logical, content)
        mimetype = mimetypes.guess_type(logical)[0] or "application/octet-stream"
        encoded = {}
        if write and build_dir is not None:
            # The file itself too, under its hashed name, so nginx can serve every
            # variant straight from the build (deploy/nginx-portal.conf).
            write_atomically(_ensure_parent(build_dir / hashed), content)
        if path.suffix in COMPRESSIBLE:
            for encoding in ENCODINGS:
                built = build_dir / f"{hashed}.{SUFFIXES[encoding]}" if build_dir else None
                if built is not None and built.is_file():
                    encoded[encoding] = built.read_bytes()
                    continue
                encoded[encoding] = compress(content, encoding)
                if write and built is not None:
                    built.parent.mkdir(parents=True, exist_ok=True)
                    write_atomically(built, encoded[encoding])
        assets[logical] = Asset(logical, hashed, mimetype, content, encoded)
    _loaded[key] = assets
    return assets


def _ensure_parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def build(static_dir: Path, build_dir: Path) -> list[Asset]:
    """What `flask build-assets` does: every file and its compressed variants written to build_dir."""
    return list(load(static_dir, build_dir, write=True).values())


def style_hash(css: bytes) -> str:
    """The CSP source for an inline <style> holding exactly these bytes."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(css).digest()).decode("ascii") + "'"


def init_app(app, static_dir: Path, build_dir: Path) -> None:
    assets = load(static_dir, build_dir)
    app.extensions["portal.assets"] = {logical: asset.hashed for logical, asset in assets.items()}
    app.extensions["portal.assets_by_hash"] = {asset.hashed: asset for asset in assets.values()}
    css = assets["css/site.css"].content
    if b"</" in css:
        raise ValueError("site.css must not hold '</': it is inlined in a <style> element")
    app.extensions["portal.inline_css"] = css.decode("utf-8")
    app.extensions["portal.inline_css_hash"] = style_hash(css)
    app.extensions["portal.favicon"] = svg_data_uri(assets["favicon.svg"].content)


def svg_data_uri(svg: bytes) -> str:
    """The icon travels inside every page too: a page asks for nothing but its scripts.
    Escaped to a valid URL, as the Nu Html Checker reads it (tests/test_html_valid.py):
    no spaces, no '#' (it would start a fragment) and no double quotes."""
    return "data:image/svg+xml," + urllib.parse.quote(svg.decode("utf-8").strip(), safe="/:=';,.-")


def asset_url(logical: str) -> str:
    hashed = current_app.extensions["portal.assets"].get(logical)
    if hashed is None:
        raise LookupError(f"no static file {logical!r}: run `make setup` to install vendor files")
    return f"/static/{hashed}"


def chosen_encoding(asset: Asset) -> str | None:
    accepted = request.accept_encodings
    best = None
    for encoding in ENCODINGS:
        quality = accepted[encoding]
        if encoding in asset.encoded and quality > 0 and (best is None or quality > best[1]):
            best = (encoding, quality)
    return best[0] if best else None


@bp.route("/static/<path:hashed>")
def asset(hashed: str):
    found = current_app.extensions["portal.assets_by_hash"].get(hashed)
    if found is None:
        abort(404)
    encoding = chosen_encoding(found)
    # Werkzeug adds "; charset=utf-8" to text/*, JavaScript and +xml (SVG) types itself.
    response = Response(found.encoded[encoding] if encoding else found.content, mimetype=found.mimetype)
    if encoding:
        response.headers["Content-Encoding"] = encoding
    if found.encoded:
        response.vary.add("Accept-Encoding")
    response.set_etag(f"{found.hashed}:{encoding or 'identity'}")
    response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    return response.make_conditional(request)
