"""The account's details: its mailing and physical addresses and its contact.

Addresses are stored as the multi-line text the rest of the portal shows
("PO Box 100\\nEdmonton AB  T5J 2Z2"): street lines, then "City PROV  POSTAL".
The edit form works on structured parts; `parse_address` and `compose_address`
go between the two, and nothing that cannot be parsed is lost (it goes to line 1).

A save is optimistic: it names the `profile_version` it was based on and only
one UPDATE that still finds that version succeeds, bumping it. Each change is a
ServiceRequest (kind "profile") holding the before and after of what changed.
Plain functions, no Flask."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain.db import rows_changed
from models import Account, ServiceRequest, User

# The 13 provinces and territories with Canada Post's two-letter codes.
PROVINCES = (
    ("AB", "Alberta"),
    ("BC", "British Columbia"),
    ("MB", "Manitoba"),
    ("NB", "New Brunswick"),
    ("NL", "Newfoundland and Labrador"),
    ("NS", "Nova Scotia"),
    ("NT", "Northwest Territories"),
    ("NU", "Nunavut"),
    ("ON", "Ontario"),
    ("PE", "Prince Edward Island"),
    ("QC", "Quebec"),
    ("SK", "Saskatchewan"),
    ("YT", "Yukon"),
)
PROVINCE_CODES = tuple(code for code, _name in PROVINCES)

# What a saved change can touch, in the order the page shows it, and its words.
FIELDS = ("mailing_address", "physical_address", "contact_name", "contact_phone", "contact_email")
FIELD_WORDS = {
    "mailing_address": "mailing address",
    "physical_address": "physical address",
    "contact_name": "contact name",
    "contact_phone": "phone",
    "contact_email": "email",
}

LINE_MAX = 200
PHONE_EXAMPLE = "like 403-678-5521"

# Letter digit letter, digit letter digit. D F I O Q U are never used (they are
# misread by machines and people); W and Z never start a code.
_POSTAL_SHAPE = re.compile(r"[A-Z][0-9][A-Z][0-9][A-Z][0-9]", re.ASCII)
_POSTAL_REAL = re.compile(r"[ABCEGHJ-NPRSTVXY][0-9][ABCEGHJ-NPRSTV-Z][0-9][ABCEGHJ-NPRSTV-Z][0-9]", re.ASCII)
_LAST_LINE = re.compile(
    r"^(?P<city>.+?)\s+(?P<province>" + "|".join(PROVINCE_CODES) + r")\s+"
    r"(?P<postal>[A-Za-z][0-9][A-Za-z]\s*[0-9][A-Za-z][0-9])$",
    re.ASCII,
)
_EXTENSION_MAX = 6


# --- Single-line text ---------------------------------------------------------------


# The bidirectional embeddings, overrides and isolates: they make a name or a reference
# read backwards, so "Eve" can pass for someone else on a staff page (CVE-2021-42574).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def has_control_characters(text: str) -> bool:
    """Line breaks, tabs, NUL, bidirectional overrides and the like: never part of one
    line of an address or a name."""
    return any(unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS for char in text)


def tidy(text: str | None) -> str:
    """Trimmed, with runs of spaces made one."""
    return " ".join((text or "").split())


# --- Postal codes and phone numbers -------------------------------------------------


def normalise_postal(text: str | None) -> tuple[str | None, str | None]:
    """("T5J 2Z2", None) for a real Canadian postal code typed in any case, with or
    without a space (or with extra ones); (None, message) otherwise."""
    compact = "".join((text or "").split()).upper()
    if not compact:
        return None, "Enter the postal code"
    if not _POSTAL_SHAPE.fullmatch(compact):
        return None, "Enter a postal code in the correct format, like T5J 2Z2"
    if not _POSTAL_REAL.fullmatch(compact):
        return None, (
            "Enter a real postal code: postal codes never use the letters D, F, I, O, Q or U, "
            "and never start with W or Z"
        )
    return f"{compact[:3]} {compact[3:]}", None


def normalise_phone(text: str | None) -> tuple[str | None, str | None]:
    """("403-678-5521", None), or with an extension ("403-678-5521 ext. 12"), for
    a valid Canadian or other North American number; (None, message) otherwise.
    Validity is libphonenumber's (region "CA"): area code and exchange must be
    ones in use. The fictional 555-01XX lines of real area codes count as valid,
    as libphonenumber says; a number without its area code does not."""
    text = (text or "").strip()
    if not text:
        return None, "Enter a phone number"
    if len(text) > 40 or has_control_characters(text):
        return None, f"Enter a phone number in the correct format, {PHONE_EXAMPLE}"
    try:
        number = phonenumbers.parse(text, "CA")
    except phonenumbers.NumberParseException:
        return None, f"Enter a phone number in the correct format, {PHONE_EXAMPLE}"
    if number.country_code != 1:
        return None, f"Enter a Canadian or North American phone number, {PHONE_EXAMPLE}"
    digits = str(number.national_number)
    if len(digits) == 7:
        return None, f"Enter the phone number with its area code, {PHONE_EXAMPLE}"
    if len(digits) != 10 or not phonenumbers.is_valid_number(number):
        return None, f"Enter a real phone number, {PHONE_EXAMPLE}"
    formatted = f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    if number.extension:
        if not number.extension.isascii() or not number.extension.isdigit() or len(number.extension) > _EXTENSION_MAX:
            return None, f"Enter an extension of up to {_EXTENSION_MAX} digits, like 403-678-5521 ext. 12"
        formatted += f" ext. {number.extension}"
    return formatted, None


# --- Addresses -----------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    province: str = ""
    postal: str = ""

    def as_dict(self) -> dict:
        return {
            "line1": self.line1,
            "line2": self.line2,
            "city": self.city,
            "province": self.province,
            "postal": self.postal,
        }

    @property
    def complete(self) -> bool:
        return bool(self.line1 and self.city and self.province in PROVINCE_CODES and self.postal)


def parse_address(text: str | None) -> Address:
    """The parts of a stored address. The last line is "City PROV  POSTAL"; the
    first line before it is line 1 and any others are line 2. Text that does not
    follow that shape goes to line 1, whole, so nothing is lost."""
    lines = [line.strip() for line in (text or "").replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        return Address()
    match = _LAST_LINE.match(lines[-1]) if len(lines) >= 2 else None
    if match is None:
        return Address(line1=", ".join(lines))
    postal, _problem = normalise_postal(match["postal"])
    if postal is None:
        return Address(line1=", ".join(lines))
    return Address(
        line1=lines[0],
        line2=", ".join(lines[1:-1]),
        city=tidy(match["city"]),
        province=match["province"],
        postal=postal,
    )


def compose_address(address: Address) -> str:
    """The stored text: line 1, line 2 when there is one, then "City PROV  POSTAL"."""
    lines = [address.line1]
    if address.line2:
        lines.append(address.line2)
    lines.append(f"{address.city} {address.province}  {address.postal}")
    return "\n".join(lines)


def normalised_address(text: str | None) -> str:
    """The stored text as this form would write it, when it can be parsed; else as it is."""
    parts = parse_address(text)
    return compose_address(parts) if parts.complete else (text or "")


def normalised_phone(text: str | None) -> str:
    value, _problem = normalise_phone(text)
    return value if value is not None else (text or "")


# --- Changes -----------------------------------------------------------------------------


def current_values(account: Account) -> dict[str, str]:
    return {name: getattr(account, name) or "" for name in FIELDS}


def changes(before: dict[str, str], after: dict[str, str]) -> dict[str, dict[str, str]]:
    """{field: {"before": ..., "after": ...}} for the fields whose value changed. A
    stored value the form would only reformat (an address or phone typed another
    way) is not a change."""
    comparable = {
        "mailing_address": normalised_address,
        "physical_address": normalised_address,
        "contact_phone": normalised_phone,
    }
    changed = {}
    for name in FIELDS:
        old, new = before.get(name) or "", after.get(name) or ""
        same = comparable.get(name, lambda v: v or "")(old)
        if new != old and new != same:
            changed[name] = {"before": old, "after": new}
    return changed


def summary(changed: dict) -> str:
    """ "Mailing address and phone changed", "Mailing address, phone and email changed"."""
    words = [FIELD_WORDS[name] for name in FIELDS if name in changed]
    if not words:
        return "No change"
    text = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"{text[0].upper()}{text[1:]} changed"


class Conflict(Exception):
    """Someone saved the details first: the version the form was based on is gone."""


def hold(db: Session, account_id: int) -> None:
    """Lock the account's row until the transaction ends, before a save: two saves
    take turns (the second then finds the version gone). On SQLite this write also
    opens the transaction (the one write lock), so the save's savepoint is inside
    it and the request, the change and its audit events commit together: a
    SAVEPOINT that opens a transaction is committed by its RELEASE."""
    db.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(profile_version=Account.profile_version)
        .execution_options(synchronize_session=False)
    )


def apply(db: Session, account_id: int, seen_version: int, changed: dict) -> None:
    """One UPDATE ... WHERE id = :id AND profile_version = :seen that writes the
    changed fields and bumps the version. Raises Conflict when no row matched."""
    values = {name: (change["after"] or None) for name, change in changed.items()}
    for name in ("mailing_address", "physical_address"):
        if name in values and values[name] is None:
            values[name] = ""
    updated = rows_changed(
        db,
        update(Account)
        .where(Account.id == account_id, Account.profile_version == seen_version)
        .values(profile_version=Account.profile_version + 1, **values)
        .execution_options(synchronize_session=False),
    )
    if updated != 1:
        raise Conflict()


# --- History -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    reference: str
    changed_at: datetime
    changed_by: str
    summary: str
    fields: list[tuple[str, str, str]]  # (what, before, after)


def history(db: Session, account_id: int, limit: int | None = None) -> list[Change]:
    """The account's saved changes, newest first: who, when, and before and after."""
    query = (
        select(ServiceRequest, User.name)
        .outerjoin(User, User.id == ServiceRequest.submitted_by_user_id)
        .where(ServiceRequest.account_id == account_id, ServiceRequest.kind == "profile")
        .order_by(ServiceRequest.submitted_at.desc(), ServiceRequest.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = []
    for request, name in db.execute(query):
        try:
            data = json.loads(request.data or "{}")
        except ValueError:
            data = {}
        fields = []
        for field in FIELDS:
            change = data.get(field) if isinstance(data, dict) else None
            if isinstance(change, dict):
                what = FIELD_WORDS[field]
                fields.append(
                    (what[0].upper() + what[1:], str(change.get("before") or ""), str(change.get("after") or ""))
                )
        rows.append(
            Change(
                request.reference, request.submitted_at, name or "Someone no longer registered", request.summary, fields
            )
        )
    return rows


def last_change(db: Session, account_id: int) -> Change | None:
    found = history(db, account_id, limit=1)
    return found[0] if found else None
