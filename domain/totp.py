"""Second factor: TOTP codes (RFC 6238) and one-time recovery codes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import pyotp
from sqlalchemy.orm import Session

from models import RecoveryCode, User

ISSUER = "TRA Client Self-Service"
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def _normalise(code: str) -> str:
    return "".join(ch for ch in code if ch.isalnum()).lower()


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step a six-digit code belongs to (one step of drift allowed), or None."""
    code = _normalise(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    step_now = int(now.timestamp()) // totp.interval
    for step in (step_now, step_now - 1, step_now + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_totp(user: User, code: str, now: datetime) -> bool:
    """Accept a code once: a step at or before the last accepted one is a replay."""
    if not user.totp_secret:
        return False
    step = matching_step(user.totp_secret, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def _hash_code(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def new_recovery_codes(db: Session, user: User, now: datetime) -> list[str]:
    """Replace the person's recovery codes; the plain codes are shown once, never stored."""
    for old in list(user.recovery_codes):
        db.delete(old)
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        user.recovery_codes.append(RecoveryCode(code_hash=_hash_code(raw), created_at=now))
    return codes


def use_recovery_code(user: User, code: str, now: datetime) -> bool:
    wanted = _hash_code(code)
    for stored in user.recovery_codes:
        if stored.used_at is None and secrets.compare_digest(stored.code_hash, wanted):
            stored.used_at = now
            return True
    return False


def unused_recovery_codes(user: User) -> int:
    return sum(1 for c in user.recovery_codes if c.used_at is None)


def verify_second_factor(user: User, code: str, now: datetime) -> str | None:
    """'totp' or 'recovery' for the factor that matched, or None."""
    if verify_totp(user, code, now):
        return "totp"
    if use_recovery_code(user, code, now):
        return "recovery"
    return None
