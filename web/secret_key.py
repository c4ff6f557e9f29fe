"""The app's SECRET_KEY, typed as the text it always is here."""

from __future__ import annotations

from flask import Flask, current_app


def secret_key(app: Flask | None = None) -> str:
    """The key that signs cookies, links and throttle keys. config.py reads it from the
    environment, so it is text; Flask types it `str | bytes | None`, which every signer
    and hash here would otherwise have to handle."""
    key = (app if app is not None else current_app).secret_key
    if not isinstance(key, str):
        raise RuntimeError("SECRET_KEY must be set, as text")
    return key
