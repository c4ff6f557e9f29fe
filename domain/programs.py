"""The programs the agency administers, as data. Rules follow Alberta's published
ones where they are public; the demo uses them as they are written here."""
from __future__ import annotations

from sqlalchemy.orm import Session

from models import Program, ProgramSetting

PROGRAMS = [
    dict(code="TL", name="Tourism Levy", number_prefix="41", filing_frequency="monthly", due_rule="M+1:last",
         functions="file,upload,payment_arrangement,objection,waiver,direct_deposit,messages",
         description="A levy of 4% on the purchase price of temporary accommodation. Operators file and pay "
                     "monthly, by the last day of the month after the period."),
    dict(code="FT", name="Fuel Tax", number_prefix="42", filing_frequency="monthly", due_rule="M+1:last",
         functions="file,upload,payment_arrangement,objection,waiver,direct_deposit,renewal,messages",
         description="Tax on gasoline and diesel sold or used in Alberta. Licensed collectors file a monthly "
                     "return by the last day of the following month. The licence is renewed each year."),
    dict(code="TT", name="Tobacco Tax", number_prefix="43", filing_frequency="monthly", due_rule="M+1:25",
         functions="file,upload,payment_arrangement,objection,waiver,renewal,messages",
         description="Tax on tobacco products. Licensed collectors file a monthly return by the 25th of the "
                     "following month."),
    dict(code="ICT", name="Insurance Corporation Tax", number_prefix="44", filing_frequency="annual",
         due_rule="M+3:15",
         functions="file,upload,payment_arrangement,objection,waiver,messages",
         description="Tax on premiums written in Alberta by insurers. An annual return for the calendar year, "
                     "due by 15 March."),
    dict(code="CIT", name="Corporate Income Tax", number_prefix="45", filing_frequency="annual",
         due_rule="M+6:last",
         functions="upload,payment_arrangement,objection,waiver,direct_deposit,messages",
         description="Alberta corporate income tax. The AT1 return is due six months after the end of the tax "
                     "year (the AT1 itself is filed through net filing, not here)."),
    dict(code="FTR", name="Fuel Tax Refund", number_prefix="46", filing_frequency="quarterly", due_rule="M+48:last",
         is_claim=True, functions="file,upload,objection,direct_deposit,messages",
         description="A claim for a refund of fuel tax paid on fuel used for an eligible purpose. A claim may "
                     "be made up to four years after the period."),
]


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


def setting(db: Session, program_code: str, key: str) -> str:
    if key not in DEFAULT_SETTINGS:
        raise KeyError(key)
    row = db.get(ProgramSetting, (program_code, key))
    return row.value if row is not None else DEFAULT_SETTINGS[key]


def int_setting(db: Session, program_code: str, key: str) -> int:
    return int(setting(db, program_code, key))


def ensure_programs(db: Session) -> None:
    """Add the programs (and their settings) that are missing; those already there are left alone."""
    for spec in PROGRAMS:
        if db.get(Program, spec["code"]) is None:
            db.add(Program(**spec))
    db.flush()
    for code, values in PROGRAM_SETTINGS.items():
        for key, value in values.items():
            if db.get(ProgramSetting, (code, key)) is None:
                db.add(ProgramSetting(program_code=code, key=key, value=value))
    db.flush()
