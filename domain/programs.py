"""The programs the agency administers, as data. Rules follow Alberta's published
ones where they are public; the demo uses them as they are written here."""
from __future__ import annotations

from sqlalchemy.orm import Session

from models import Program

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


def ensure_programs(db: Session) -> None:
    """Add the programs that are missing; programs already there are left alone."""
    for spec in PROGRAMS:
        if db.get(Program, spec["code"]) is None:
            db.add(Program(**spec))
    db.flush()
