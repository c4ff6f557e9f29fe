"""Single-use signed links (itsdangerous), each purpose with its own salt and age."""

from __future__ import annotations

import hashlib
from datetime import datetime

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import UsedToken

SALTS = {"verify-email": "portal.verify-email.v1", "reset-password": "portal.reset-password.v1"}


class TokenError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "expired", "invalid" or "used"


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALTS[purpose])


def make_token(secret: str, purpose: str, payload: dict, now: datetime) -> str:
    # Signed with the injected clock's time, so tests can age a link without sleeping.
    serializer = _serializer(secret, purpose)
    signer = serializer.make_signer(serializer.salt)
    signer.get_timestamp = lambda: int(now.timestamp())  # type: ignore[method-assign]
    return signer.sign(serializer.dump_payload(payload)).decode()


def read_token(secret: str, purpose: str, token: str, max_age: int, now: datetime) -> dict:
    serializer = _serializer(secret, purpose)
    try:
        payload, signed_at = serializer.loads(token, return_timestamp=True)
    except BadSignature as exc:
        raise TokenError("invalid") from exc
    age = (now - signed_at).total_seconds()
    if age > max_age or age < -300:
        raise TokenError("expired")
    if not isinstance(payload, dict):
        raise TokenError("invalid")
    return payload


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_used(db: Session, token: str) -> bool:
    return db.get(UsedToken, token_hash(token)) is not None


def mark_used(db: Session, token: str, purpose: str, now: datetime) -> None:
    """Record the use; the primary key makes a concurrent second use fail."""
    db.add(UsedToken(token_hash=token_hash(token), purpose=purpose, used_at=now))
    try:
        db.flush()
    except IntegrityError as exc:
        db.rollback()
        raise TokenError("used") from exc
