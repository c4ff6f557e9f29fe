"""Codes and keys in words, for the people who read the back office. No Flask.

The audit log and request data keep codes (`consent.submitted`, `balance_cents`,
`per_litre`) because code reads them; a person should never have to. This is the
one place that turns them into words: EVENT_WORDS for audit events, `humanise`
for any key, `answer_text` for a value under its key (money from integer cents
through format_amount, as the money filter shows it; rates' units in words). An
event missing from EVENT_WORDS is still shown in words, made from its code."""

from __future__ import annotations

import re
from decimal import Decimal

from domain.accounts import format_amount

EVENT_WORDS = {
    "access.changed": "Access changed",
    "access.pin_cancelled": "PIN withdrawn",
    "access.pin_reissued": "PIN reissued",
    "access.refused": "Access change refused",
    "access.removed": "Access removed",
    "access.reviewed": "Access list reviewed",
    "account.demo_created": "Demo sign-in created",
    "account.disabled": "Sign-in disabled",
    "account.enabled": "Sign-in enabled",
    "account.register_existing": "Registration with an email already registered",
    "account.registered": "Registered",
    "arrangement.approved": "Payment arrangement approved",
    "arrangement.declined": "Payment arrangement declined",
    "arrangement.withdrawn": "Payment arrangement withdrawn",
    "audit.exported": "Audit log exported",
    "consent.approved": "Consent approved",
    "consent.declined": "Consent request declined",
    "consent.form_uploaded": "Signed consent form uploaded",
    "consent.rejected": "Consent not approved",
    "consent.reminded": "Managers reminded of a representative's request",
    "consent.requested": "Representative asked for access",
    "consent.revoked": "Consent revoked",
    "consent.submitted": "Consent submitted",
    "csrf.refused": "Form refused: its security check failed",
    "direct_deposit.changed": "Direct deposit details changed",
    "direct_deposit.confirmed": "Direct deposit change confirmed",
    "direct_deposit.declined": "Direct deposit change declined",
    "document.refused": "Document refused",
    "document.uploaded": "Document uploaded",
    "email.verified": "Email address confirmed",
    "enrolment": "Enrolled with a PIN",
    "enrolment.letter_requested": "Invitation letter asked for",
    "ledger.posted": "Ledger entry posted",
    "ledger.reversed": "Ledger entry reversed",
    "ledger.transfer_in": "Credit transferred in",
    "ledger.transfer_out": "Credit transferred out",
    "letter.issued": "Invitation letter issued",
    "mail.delivery_chosen": "Mail delivery chosen",
    "mail.downloaded": "Mail downloaded",
    "mail.mailed": "Mail sent by post",
    "mail.posted": "Mail posted to the account",
    "message.replied": "Message replied to",
    "message.reply_received": "Reply received",
    "message.sent": "Message sent",
    "message.written": "Message written to us",
    "password.changed": "Password changed",
    "password.reset": "Password reset",
    "password.reset_requested": "Password reset asked for",
    "pin.issued": "PIN issued",
    "pin.reissued": "PIN reissued",
    "profile.changed": "Profile changed",
    "profile.details_changed": "Account details changed",
    "program.changed": "Program changed",
    "program.registered": "Program registered",
    "recovery_code.used": "Recovery code used",
    "recovery_codes.replaced": "Recovery codes replaced",
    "renewal.approved": "Licence renewal approved",
    "renewal.declined": "Licence renewal declined",
    "request.approved": "Request approved",
    "request.completed": "Request completed",
    "request.declined": "Request declined",
    "return.assessed": "Return assessed",
    "return.reassessed": "Return reassessed",
    "sessions.ended_by_staff": "Sessions ended by staff",
    "sessions.others_ended": "Other sessions ended",
    "signin": "Signed in",
    "signout": "Signed out",
    "signin.password": "Signed in with a password",
    "signin.reconfirmed": "Password confirmed again",
    "signin.refused": "Sign-in refused",
    "signin.second_factor": "Second factor accepted",
    "staff.added": "Staff member added",
    "staff.revoked": "Staff access revoked",
    "staff.role_changed": "Staff role changed",
    "subscriptions.asked": "Updates subscription asked for",
    "subscriptions.confirmed": "Updates subscription confirmed",
    "subscriptions.ended": "Updates subscription ended",
    "two_factor.disabled": "Two-step sign-in turned off",
    "two_factor.enabled": "Two-step sign-in turned on",
    "updates.published": "Update published to subscribers",
    "waiver.credited": "Penalty or interest waived",
    "work.assigned": "Work item assigned",
    "work.decided": "Work item decided",
    "work.released": "Work item put back in the queue",
    "work.taken": "Work item taken",
    # A request sent, by kind (domain.requests.submit records "request.<kind>").
    "request.return": "Return sent",
    "request.claim": "Claim sent",
    "request.amended_return": "Amended return sent",
    "request.amended_claim": "Amended claim sent",
    "request.objection": "Notice of objection sent",
    "request.waiver": "Waiver request sent",
    "request.arrangement": "Payment arrangement proposed",
    "request.direct_deposit": "Direct deposit details sent",
    "request.renewal": "Licence renewal sent",
    "request.profile": "Account details change sent",
    "request.documents": "Supporting documents sent",
}
OUTCOME_WORDS = {"success": "Done", "failure": "Failed", "refused": "Refused", "denied": "Refused"}
UNIT_WORDS = {"percent": "percent", "per_litre": "a litre", "per_unit": "each", "per_gram": "a gram"}
# Parts of keys said in other words ("pin_id" is "PIN", not "Pin id"; "balance_cents" is "Balance").
_KEY_PARTS = {"pin": "PIN", "id": "", "cents": "", "sr": "SR", "url": "address"}
SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


def humanise(key: str) -> str:
    """A key or code in words: "balance_cents" is "Balance", "rate_unit" is "Rate
    unit", "consent.submitted" is "Consent submitted"."""
    parts = [_KEY_PARTS.get(part, part) for part in re.split(r"[._\s]+", str(key).strip()) if part]
    text = " ".join(part for part in parts if part) or ("Amount" if str(key).strip() == "cents" else "")
    return text[:1].upper() + text[1:] if text else str(key)


def event_words(code: str) -> str:
    return EVENT_WORDS.get(code) or humanise(code)


def outcome_words(outcome: str) -> str:
    return OUTCOME_WORDS.get(outcome) or humanise(outcome)


def event_code(text: str) -> str:
    """What the audit filter looks for: an event typed in words ("Consent approved")
    is its code; anything else is taken as typed (a code, or the start of one)."""
    wanted = " ".join(text.split()).lower()
    for code, words in EVENT_WORDS.items():
        if words.lower() == wanted:
            return code
    return text


def answer_text(value, key: str = "") -> str:
    """A value as a person reads it under its key: money for a "…_cents" key, a
    rate's unit in words, a code in words; anything else as it is. (Value first,
    so templates can write `value | answer_text(key)`.)"""
    if (str(key).endswith("_cents") or key == "cents") and _whole_number(value):
        return format_amount(int(value))
    if isinstance(value, str) and value in UNIT_WORDS:
        return UNIT_WORDS[value]
    if isinstance(value, str) and value in EVENT_WORDS:
        return EVENT_WORDS[value]
    if isinstance(value, str) and SNAKE.match(value):
        return humanise(value)
    return str(value)


def _whole_number(value) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value) is not None)


def rate_text(value, unit: str) -> str:
    """A rate as a person reads it: "4%", "$0.13 a litre", "$0.30 each"."""
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return f"{value} {UNIT_WORDS.get(unit, humanise(unit).lower())}"
    plain = f"{number.normalize():f}"
    if unit == "percent":
        return f"{plain}%"
    return f"${plain} {UNIT_WORDS.get(unit, humanise(unit).lower())}"


def answer_pairs(answers: dict) -> list[tuple[str, object]]:
    """A mapping's (key, value) pairs as a person should read them: a rate and its
    unit as one "Rate" ("4%"), and an amount in cents left out where the same
    amount is there in words already ("total" beside "total_cents", "amount"
    beside "cents")."""
    pairs: list[tuple[str, object]] = []
    for key, value in answers.items():
        key = str(key)
        if key.endswith("_cents") and key.removesuffix("_cents") in answers:
            continue
        if (key == "cents" and "amount" in answers) or (key.endswith("_unit") and key.removesuffix("_unit") in answers):
            continue
        if f"{key}_unit" in answers:
            value = rate_text(value, str(answers[f"{key}_unit"]))
        pairs.append((key, value))
    return pairs
