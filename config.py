"""Settings, read from environment variables with safe development defaults.

Every knob the issues name (timeouts, service hours, mail, limits) lives here so a
deployment changes behaviour without touching code.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

BASE_DIR = Path(__file__).resolve().parent
DEFAULT_SECRET = "dev-only-secret-change-me"


class ConfigurationError(RuntimeError):
    """A setting the portal cannot run with: the message names the variable and what it accepts."""


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word not in _TRUE | _FALSE:
        raise ConfigurationError(f"{name} must be true or false (or 1, 0, yes, no, on, off); it is {value!r}")
    return word in _TRUE


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number; it is {value!r}") from None
    if number < 0:
        raise ConfigurationError(f"{name} must be 0 or more; it is {value!r}")
    return number


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip()
    if value not in choices:
        accepted = ", ".join(repr(choice) for choice in choices)
        raise ConfigurationError(f"{name} must be one of {accepted}; it is {value!r}")
    return value


def _networks(name: str, default: str) -> str:
    """Comma-separated addresses or networks (10.0.0.0/8, ::1): each must parse."""
    value = os.environ.get(name, default)
    for part in (part.strip() for part in value.split(",")):
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ConfigurationError(
                f"{name} must list addresses or networks, like 127.0.0.1,10.0.0.0/8; {part!r} is neither"
            ) from None
    return value


def _timezone(name: str, default: str) -> str:
    value = os.environ.get(name, default).strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"{name} must be a time zone name like America/Edmonton; it is {value!r}") from None
    return value


def from_environment() -> dict:
    """Every setting, read in this order (the first one wrong is the one reported)."""
    env = _choice("PORTAL_ENV", "development", ("development", "production"))
    return {
        **_secrets_and_database(env),
        **_sign_in(env),
        **_service_and_mail(),
        **_serving(env),
        **_access_and_documents(),
    }


def _secrets_and_database(env: str) -> dict:
    """The environment, the secret keys and the database."""
    return {
        "PORTAL_ENV": env,
        "SECRET_KEY": os.environ.get("SECRET_KEY", DEFAULT_SECRET),
        # Earlier secret keys, comma-separated, after a rotation: PINs issued under them
        # are still found (domain.enrolment.configure).
        "SECRET_KEY_FALLBACKS": [key for key in os.environ.get("SECRET_KEY_FALLBACKS", "").split(",") if key],
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'portal.db'}"),
    }


def _sign_in(env: str) -> dict:
    """Sessions, two-factor, the limits on signing in and on what one person or address may ask
    for, the password hashing costs and how long emailed links work."""
    return {
        # Sessions (seed: 15 minutes idle, re-confirm after one hour of activity).
        "SESSION_IDLE_SECONDS": _int("SESSION_IDLE_SECONDS", 15 * 60),
        "SESSION_WARNING_SECONDS": _int("SESSION_WARNING_SECONDS", 2 * 60),
        "SESSION_REAUTH_SECONDS": _int("SESSION_REAUTH_SECONDS", 60 * 60),
        "SESSION_MAX_SECONDS": _int("SESSION_MAX_SECONDS", 12 * 60 * 60),
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", env == "production"),
        "REQUIRE_TWO_FACTOR_FOR_ALL": _bool("REQUIRE_TWO_FACTOR_FOR_ALL", False),
        # Sign-in limits: failures per email (and per client) inside a window.
        "SIGNIN_MAX_FAILURES": _int("SIGNIN_MAX_FAILURES", 5),
        "SIGNIN_CLIENT_MAX_FAILURES": _int("SIGNIN_CLIENT_MAX_FAILURES", 30),
        "SIGNIN_WINDOW_SECONDS": _int("SIGNIN_WINDOW_SECONDS", 15 * 60),
        # Linking an account: distinct account numbers one person may get wrong in a day,
        # and wrong tries from one client address in a day (which hold back only people
        # who have got one wrong themselves: domain.enrolment).
        "ENROL_NUMBERS_PER_DAY": _int("ENROL_NUMBERS_PER_DAY", 10),
        # Emails one address may be sent in an hour because someone asked (registering
        # with it, a password reset, a staff set-up link), and forms that hash a password
        # or send an email one client address may send in an hour while signed out.
        "EMAILS_PER_ADDRESS_PER_HOUR": _int("EMAILS_PER_ADDRESS_PER_HOUR", 3),
        "CLIENT_REQUESTS_PER_HOUR": _int("CLIENT_REQUESTS_PER_HOUR", 20),
        # Requests for a client's consent one representative may send in a day.
        "CONSENT_REQUESTS_PER_DAY": _int("CONSENT_REQUESTS_PER_DAY", 10),
        "ENROL_CLIENT_MAX_FAILURES": _int("ENROL_CLIENT_MAX_FAILURES", 100),
        # Requests for an invitation letter (/enrol/ask) in a day, from one client address
        # and for one requester's email address (domain.enrolment_requests).
        "LETTER_REQUESTS_PER_CLIENT_PER_DAY": _int("LETTER_REQUESTS_PER_CLIENT_PER_DAY", 5),
        "LETTER_REQUESTS_PER_EMAIL_PER_DAY": _int("LETTER_REQUESTS_PER_EMAIL_PER_DAY", 3),
        # argon2id costs; empty means the argon2-cffi recommendation (tests lower them).
        "ARGON2_TIME_COST": _int("ARGON2_TIME_COST", 0) or None,
        "ARGON2_MEMORY_KIB": _int("ARGON2_MEMORY_KIB", 0) or None,
        "EMAIL_LINK_MAX_AGE_SECONDS": _int("EMAIL_LINK_MAX_AGE_SECONDS", 48 * 60 * 60),
        "RESET_LINK_MAX_AGE_SECONDS": _int("RESET_LINK_MAX_AGE_SECONDS", 60 * 60),
    }


def _service_and_mail() -> dict:
    """Service hours, how mail is sent and the outbox."""
    return {
        # Service hours: "always" (demo) or "tracs" (the published TRACS schedule).
        "SERVICE_HOURS": _choice("SERVICE_HOURS", "always", ("always", "tracs")),
        "SERVICE_TIMEZONE": _timezone("SERVICE_TIMEZONE", "America/Edmonton"),
        "SERVICE_CLOSING_WARNING_MINUTES": _int("SERVICE_CLOSING_WARNING_MINUTES", 15),
        # Mail: "log" writes messages to the log; "smtp" sends through SMTP_*.
        "MAIL_SENDER": _choice("MAIL_SENDER", "log", ("log", "smtp")),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "TRA Client Self-Service <no-reply@tracs.example>"),
        "SMTP_HOST": os.environ.get("SMTP_HOST", "127.0.0.1"),
        "SMTP_PORT": _int("SMTP_PORT", 25),
        "SMTP_USERNAME": os.environ.get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _bool("SMTP_STARTTLS", False),
        "SMTP_TIMEOUT_SECONDS": _int("SMTP_TIMEOUT_SECONDS", 10),
        # A background thread in each worker sends the outbox; tests send it by hand.
        "OUTBOX_THREAD": _bool("OUTBOX_THREAD", True),
        "OUTBOX_POLL_SECONDS": _int("OUTBOX_POLL_SECONDS", 5),
    }


def _serving(env: str) -> dict:
    """Request sizes, the public address, proxies, logs and who may read /metrics."""
    return {
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 1024 * 1024),
        "MAX_FORM_MEMORY_SIZE": _int("MAX_FORM_MEMORY_SIZE", 256 * 1024),
        # In development the address `make run` serves on (it follows PORT).
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL") or f"http://127.0.0.1:{_int('PORT', 8000)}",
        # Unset in development: emailed links follow the loopback address a page was served on (web.links).
        "LINKS_FOLLOW_THE_SERVED_ADDRESS": env == "development" and not os.environ.get("PUBLIC_BASE_URL"),
        "TRUSTED_PROXY_COUNT": _int("TRUSTED_PROXY_COUNT", 0),
        # Logs: "text" lines, or "json" lines for a log collector (web.observability).
        "LOG_FORMAT": _choice("LOG_FORMAT", "text", ("text", "json")),
        # Addresses (and networks) /metrics answers; anyone else gets 404.
        "METRICS_ALLOWED": _networks("METRICS_ALLOWED", "127.0.0.1/32,::1/128"),
    }


def _access_and_documents() -> dict:
    """Caps on access to an account, and uploads: sizes, the document store, quotas, malware scanning."""
    return {
        # Managing access: caps per account (live grants and pending PINs count),
        # and how long a PIN a manager issues stays valid.
        "MAX_OWNERS_PER_ACCOUNT": _int("MAX_OWNERS_PER_ACCOUNT", 3),
        "MAX_REPRESENTATIVES_PER_ACCOUNT": _int("MAX_REPRESENTATIVES_PER_ACCOUNT", 10),
        "DELEGATE_PIN_VALID_DAYS": _int("DELEGATE_PIN_VALID_DAYS", 30),
        "ACCESS_REVIEW_MONTHS": _int("ACCESS_REVIEW_MONTHS", 12),
        # Largest file a person may upload (a signed consent form).
        "UPLOAD_MAX_BYTES": _int("UPLOAD_MAX_BYTES", 10 * 1024 * 1024),
        # Supporting documents (docs/documents.md). The store: "database" (several
        # servers sharing PostgreSQL, no shared disk) or "filesystem" (one server,
        # files in DOCUMENT_DIR). Empty means "database" when DATABASE_URL is
        # PostgreSQL, else "filesystem". An empty DOCUMENT_DIR is <instance>/documents.
        "DOCUMENT_STORE": _choice("DOCUMENT_STORE", "", ("", "database", "filesystem")),
        "DOCUMENT_DIR": os.environ.get("DOCUMENT_DIR", ""),
        # Files one upload may carry, each up to UPLOAD_MAX_BYTES.
        "MAX_FILES_PER_UPLOAD": _int("MAX_FILES_PER_UPLOAD", 5),
        # What one account may keep in supporting documents, in all (0: no limit):
        # checked in the same transaction as the upload, so parallel uploads cannot
        # both slip under it.
        "DOCUMENT_QUOTA_BYTES": _int("DOCUMENT_QUOTA_BYTES", 100 * 1024 * 1024),
        "DOCUMENT_QUOTA_FILES": _int("DOCUMENT_QUOTA_FILES", 500),
        # Malware scanning (domain/scanning.py). The EICAR test file is always
        # refused; with CLAMD_ADDRESS ("unix:/run/clamav/clamd.ctl" or "host:3310")
        # every file is also streamed to clamd, and an upload is refused while
        # clamd cannot answer (fail closed).
        "CLAMD_ADDRESS": os.environ.get("CLAMD_ADDRESS", ""),
        "CLAMD_TIMEOUT_SECONDS": _int("CLAMD_TIMEOUT_SECONDS", 30),
    }
