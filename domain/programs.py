"""The programs the agency administers, as data. Rules follow Alberta's published
ones where they are public; the demo uses them as they are written here."""

from __future__ import annotations

from datetime import date
from typing import NotRequired, TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Program, ProgramRate, ProgramSetting


class ProgramSpec(TypedDict):
    """One program as `Program(**spec)` takes it."""

    code: str
    name: str
    number_prefix: str
    filing_frequency: str
    due_rule: str
    functions: str
    description: NotRequired[str]
    is_claim: NotRequired[bool]
    pay_online_payee: NotRequired[str]
    pay_wire: NotRequired[str]
    pay_cheque_payable_to: NotRequired[str]
    pay_cheque_address: NotRequired[str]


PROGRAMS: list[ProgramSpec] = [
    dict(
        code="TL",
        name="Tourism Levy",
        number_prefix="41",
        filing_frequency="monthly",
        due_rule="M+1:last",
        functions="file,upload,payment_arrangement,objection,waiver,direct_deposit,messages",
        description="A levy of 4% on the purchase price of temporary accommodation. Operators file and pay "
        "monthly, by the last day of the month after the period.",
    ),
    dict(
        code="FT",
        name="Fuel Tax",
        number_prefix="42",
        filing_frequency="monthly",
        due_rule="M+1:last",
        functions="file,upload,payment_arrangement,objection,waiver,direct_deposit,renewal,messages",
        description="Tax on gasoline and diesel sold or used in Alberta. Licensed collectors file a monthly "
        "return by the last day of the following month. The licence is renewed each year.",
    ),
    dict(
        code="TT",
        name="Tobacco Tax",
        number_prefix="43",
        filing_frequency="monthly",
        due_rule="M+1:25",
        functions="file,upload,payment_arrangement,objection,waiver,renewal,messages",
        description="Tax on tobacco products. Licensed collectors file a monthly return by the 25th of the "
        "following month.",
    ),
    dict(
        code="ICT",
        name="Insurance Corporation Tax",
        number_prefix="44",
        filing_frequency="annual",
        due_rule="M+3:15",
        functions="file,upload,payment_arrangement,objection,waiver,messages",
        description="Tax on premiums written in Alberta by insurers. An annual return for the calendar year, "
        "due by 15 March.",
    ),
    dict(
        code="CIT",
        name="Corporate Income Tax",
        number_prefix="45",
        filing_frequency="annual",
        due_rule="M+6:last",
        functions="upload,payment_arrangement,objection,waiver,direct_deposit,messages",
        description="Alberta corporate income tax. The AT1 return is due six months after the end of the tax "
        "year (the AT1 itself is filed through net filing, not here).",
    ),
    dict(
        code="FTR",
        name="Fuel Tax Refund",
        number_prefix="46",
        filing_frequency="quarterly",
        due_rule="M+48:last",
        is_claim=True,
        functions="file,upload,objection,direct_deposit,messages",
        description="A claim for a refund of fuel tax paid on fuel used for an eligible purpose. A claim may "
        "be made up to four years after the period.",
    ),
]


# How to pay, as data on each program (the "Make a payment" page and the voucher):
# the payee to add in online banking, wire or EFT details, and the cheque's payee
# and mailing address. The account number is always the reference. The bank
# details are the demonstration's own, not real ones.
AGENCY_WIRE = (
    "Bank: ATB Financial, 10020 100 Street NW, Edmonton AB  T5J 0N3\n"
    "Institution number: 219\n"
    "Transit number: 07149\n"
    "Account number: 000-DEMO-0000\n"
    "SWIFT/BIC: ATBRCA6E\n"
    "Beneficiary: Government of Alberta, Tax and Revenue Administration"
)
AGENCY_CHEQUES = {
    "pay_cheque_payable_to": "Government of Alberta",
    "pay_cheque_address": "Tax and Revenue Administration\n9811 109 Street NW\nEdmonton AB  T5K 2L5",
}
for _spec in PROGRAMS:
    _spec.setdefault("pay_online_payee", f"Alberta {_spec['name']}")
    _spec.setdefault("pay_wire", AGENCY_WIRE)
    _spec.setdefault("pay_cheque_payable_to", AGENCY_CHEQUES["pay_cheque_payable_to"])
    _spec.setdefault("pay_cheque_address", AGENCY_CHEQUES["pay_cheque_address"])


# Self-service rules, as data: a program_settings row overrides the default.
DEFAULT_SETTINGS = {
    # Payment arrangements: the longest schedule, the smallest instalment, and
    # how soon the first payment must be.
    "arrangement_max_months": "12",
    "arrangement_min_instalment_cents": "5000",
    "arrangement_first_payment_days": "30",
    # Renewal: how long before a licence expires it can be renewed.
    "renewal_window_days": "90",
}
PROGRAM_SETTINGS = {
    "FT": {"arrangement_max_months": "6", "arrangement_min_instalment_cents": "25000"},
    "TT": {"arrangement_max_months": "6", "arrangement_min_instalment_cents": "25000"},
    "ICT": {"arrangement_max_months": "12", "arrangement_min_instalment_cents": "100000"},
}


# Rates as dated data: a change is a new row, never an edit, so a return for an
# earlier period is still worked out at the rate of its own time. The rate for a
# period is the one with the latest `effective_from` on or before the period's
# first day (domain.filing.rate_for). Values are decimal text: a percentage for
# "percent", dollars for "per_litre", "per_unit" and "per_gram".
def _rate(program_code: str, rate_key: str, effective_from: date, value: str, unit: str, label: str) -> dict:
    return dict(
        program_code=program_code, rate_key=rate_key, effective_from=effective_from, value=value, unit=unit, label=label
    )


RATES = [
    # Tourism Levy Act, in force 1 April 2005: 4% of the purchase price of temporary accommodation.
    _rate("TL", "levy", date(2005, 4, 1), "4", "percent", "Tourism levy"),
    # Fuel Tax Act: 13 cents a litre from Budget 2015; suspended by the fuel tax
    # relief program from 1 April 2022 to 31 December 2023; 13 cents again from
    # 1 January 2024.
    _rate("FT", "gasoline", date(2015, 3, 27), "0.13", "per_litre", "Fuel tax on gasoline"),
    _rate("FT", "gasoline", date(2022, 4, 1), "0", "per_litre", "Fuel tax on gasoline (fuel tax relief)"),
    _rate("FT", "gasoline", date(2024, 1, 1), "0.13", "per_litre", "Fuel tax on gasoline"),
    _rate("FT", "diesel", date(2015, 3, 27), "0.13", "per_litre", "Fuel tax on diesel"),
    _rate("FT", "diesel", date(2022, 4, 1), "0", "per_litre", "Fuel tax on diesel (fuel tax relief)"),
    _rate("FT", "diesel", date(2024, 1, 1), "0.13", "per_litre", "Fuel tax on diesel"),
    # Tobacco Tax Act: per cigarette or tobacco stick; per gram (or part of a gram)
    # of fine-cut and other tobacco, kept at parity with cigarettes (1.5 times the
    # per-cigarette rate); cigars a percentage of their taxable price.
    _rate("TT", "cigarette", date(2015, 10, 28), "0.25", "per_unit", "Tobacco tax per cigarette or tobacco stick"),
    _rate("TT", "cigarette", date(2019, 10, 25), "0.275", "per_unit", "Tobacco tax per cigarette or tobacco stick"),
    _rate("TT", "cigarette", date(2024, 2, 29), "0.30", "per_unit", "Tobacco tax per cigarette or tobacco stick"),
    _rate(
        "TT", "fine_cut", date(2015, 10, 28), "0.375", "per_gram", "Tobacco tax per gram of fine-cut and other tobacco"
    ),
    _rate(
        "TT", "fine_cut", date(2019, 10, 25), "0.4125", "per_gram", "Tobacco tax per gram of fine-cut and other tobacco"
    ),
    _rate(
        "TT", "fine_cut", date(2024, 2, 29), "0.45", "per_gram", "Tobacco tax per gram of fine-cut and other tobacco"
    ),
    _rate("TT", "cigar", date(2015, 10, 28), "129", "percent", "Tobacco tax on the taxable price of cigars"),
    # Insurance premiums tax (Alberta Corporate Tax Act, Part 9): 2% and 3% until
    # 1 April 2016 (the earliest date kept here is the start of 2001), then 3% and 4%.
    _rate("ICT", "life", date(2001, 1, 1), "2", "percent", "Tax on life, accident and sickness insurance premiums"),
    _rate("ICT", "life", date(2016, 4, 1), "3", "percent", "Tax on life, accident and sickness insurance premiums"),
    _rate("ICT", "other", date(2001, 1, 1), "3", "percent", "Tax on premiums of all other insurance"),
    _rate("ICT", "other", date(2016, 4, 1), "4", "percent", "Tax on premiums of all other insurance"),
    # Fuel Tax Refund: the tax paid on fuel used for an eligible purpose comes back
    # at the fuel tax rate of the period, so it follows the relief program too.
    _rate("FTR", "refund", date(2015, 3, 27), "0.13", "per_litre", "Fuel tax refund"),
    _rate(
        "FTR", "refund", date(2022, 4, 1), "0", "per_litre", "Fuel tax refund (no fuel tax under the relief program)"
    ),
    _rate("FTR", "refund", date(2024, 1, 1), "0.13", "per_litre", "Fuel tax refund"),
]


# Late filing: a penalty of a percentage of the tax assessed, and interest at a
# yearly percentage on the tax for each day the return was late (domain.late_filing
# proposes both when a late return is assessed). A claim has neither.
for _code in ("TL", "FT", "TT", "ICT", "CIT"):
    RATES.append(_rate(_code, "late_filing_penalty", date(2001, 1, 1), "5", "percent", "Late filing penalty"))
    RATES.append(_rate(_code, "late_interest", date(2001, 1, 1), "7.2", "percent", "Interest a year on tax paid late"))


def setting(db: Session, program_code: str, key: str) -> str:
    if key not in DEFAULT_SETTINGS:
        raise KeyError(key)
    row = db.get(ProgramSetting, (program_code, key))
    return row.value if row is not None else DEFAULT_SETTINGS[key]


def int_setting(db: Session, program_code: str, key: str) -> int:
    return int(setting(db, program_code, key))


def ensure_programs(db: Session) -> None:
    """Add the programs (and their settings and rates) that are missing; those already there are left alone."""
    for spec in PROGRAMS:
        if db.get(Program, spec["code"]) is None:
            db.add(Program(**spec))
    db.flush()
    for code, values in PROGRAM_SETTINGS.items():
        for key, value in values.items():
            if db.get(ProgramSetting, (code, key)) is None:
                db.add(ProgramSetting(program_code=code, key=key, value=value))
    db.flush()
    have = {
        (code, key, start)
        for code, key, start in db.execute(
            select(ProgramRate.program_code, ProgramRate.rate_key, ProgramRate.effective_from)
        )
    }
    for rate in RATES:
        if (rate["program_code"], rate["rate_key"], rate["effective_from"]) not in have:
            db.add(ProgramRate(**rate))
    db.flush()
