"""Single-use signed links (itsdangerous), each purpose with its own salt and age."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import UsedToken

SALTS = {
    "verify-email": "portal.verify-email.v1",
    "reset-password": "portal.reset-password.v1",
    "subscribe": "portal.subscribe.v1",
    "unsubscribe": "portal.unsubscribe.v1",
}


class TokenError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # "expired", "invalid" or "used"


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALTS[purpose])


class _SignerAt(TimestampSigner):
    """A TimestampSigner that writes the time it is given instead of the system's."""

    def __init__(self, *args: Any, signed_at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.signed_at = signed_at

    def get_timestamp(self) -> int:
        return self.signed_at


def make_token(secret: str, purpose: str, payload: dict, now: datetime) -> str:
    # Signed with the injected clock's time, so tests can age a link without sleeping.
    serializer = URLSafeTimedSerializer(
        secret, salt=SALTS[purpose], signer=_SignerAt, signer_kwargs={"signed_at": int(now.timestamp())}
    )
    return serializer.dumps(payload)


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
