"""Password rules (NIST SP 800-63B) and hashing (argon2id).

No composition rules: length, a blocklist of common and breached passwords, and
nothing built from the person's own name or email.
"""

from __future__ import annotations

import re
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH_SINGLE_FACTOR = 15
MIN_LENGTH_WITH_SECOND_FACTOR = 8
MAX_LENGTH = 128

_hasher = PasswordHasher()  # argon2id with the library's current recommended costs
# Verified against when the email is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-for-timing-only")


def configure(time_cost: int | None = None, memory_kib: int | None = None) -> None:
    """Set the argon2id costs (settings ARGON2_TIME_COST, ARGON2_MEMORY_KIB); None keeps
    the library's recommendation. Existing hashes still verify and are upgraded
    at the next sign-in (`needs_rehash`)."""
    global _hasher, _DUMMY_HASH
    defaults = PasswordHasher()
    _hasher = PasswordHasher(
        time_cost=time_cost or defaults.time_cost,
        memory_cost=memory_kib or defaults.memory_cost,
        parallelism=defaults.parallelism,
    )
    _DUMMY_HASH = _hasher.hash("not-a-real-password-for-timing-only")


@lru_cache(maxsize=1)
def _blocklist() -> frozenset[str]:
    # zxcvbn ships the 30,000 passwords seen most often in breach corpora.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def _personal_words(name: str, email: str) -> list[str]:
    local = email.split("@", 1)[0]
    words = re.split(r"[^\w]+", f"{name} {local}".lower())
    return [w for w in set(words) | {local.lower()} if len(w) >= 3]


def password_problem(password: str, *, name: str, email: str, second_factor: bool) -> str | None:
    """The reason a password is refused, in words for the person, or None."""
    minimum = MIN_LENGTH_WITH_SECOND_FACTOR if second_factor else MIN_LENGTH_SINGLE_FACTOR
    if len(password) < minimum:
        return f"Enter a password of at least {minimum} characters"
    if len(password) > MAX_LENGTH:
        return f"Enter a password of {MAX_LENGTH} characters or fewer"
    folded = password.lower()
    # A common password padded with digits or symbols ("password123456789") is still common.
    if folded in _blocklist() or re.sub(r"[\d\W_]+$", "", folded) in _blocklist():
        return "This password is too common. Choose one that is harder to guess"
    # So is a common password repeated ("passwordpassword123").
    for candidate in (folded, re.sub(r"[\d\W_]+$", "", folded)):
        repeated = re.fullmatch(r"(.+?)\1+", candidate)
        if repeated and repeated.group(1) in _blocklist():
            return "This password is too common. Choose one that is harder to guess"
    if len(set(folded)) <= 3:
        return "This password repeats too few characters. Choose one that is harder to guess"
    if folded in _sequences():
        return "This password is a simple sequence. Choose one that is harder to guess"
    for word in _personal_words(name, email):
        if word in folded:
            return "Your password must not contain your name or email address"
    return None


@lru_cache(maxsize=1)
def _sequences() -> frozenset[str]:
    runs = ["abcdefghijklmnopqrstuvwxyz", "0123456789" * 20, "qwertyuiopasdfghjklzxcvbnm"]
    found = set()
    for run in runs:
        for size in range(MIN_LENGTH_WITH_SECOND_FACTOR, len(run) + 1):
            for start in range(len(run) - size + 1):
                found.add(run[start : start + size])
                found.add(run[start : start + size][::-1])
    return frozenset(found)
