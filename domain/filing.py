"""Filing returns and claims: each program's form as data (the figures a person
enters, and the lines the server works out from them at the rates of the
period), reading typed figures exactly (Decimal, never float), the periods open
for filing, and the return or claim a submission records. Plain functions, no
Flask.

A line is rounded half-up to the cent on its own; the total is the sum of the
rounded lines, so the check page adds up to the cent."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain import messages
from domain.accounts import format_money
from domain.returns import period_text
from domain.sending import Refused
from models import Account, Draft, FilingPeriod, ProgramRate, ServiceRequest, TaxReturn

# The largest amount the service takes in one figure or one total (the house limit).
MAX_CENTS = 999_999_999_999
MAX_MONEY = Decimal(MAX_CENTS).scaleb(-2)  # 9,999,999,999.99
MAX_QUANTITY = Decimal("9999999999.99")
CENT = Decimal("0.01")
# Typed text longer than this is not a figure (and is never kept in full).
MAX_TEXT = 40


@dataclass(frozen=True)
class Unit:
    decimals: int  # how many decimal places a figure may have
    maximum: Decimal
    example: str  # "like 1250.00"
    word: str  # after a quantity: "litres"; "" for money
    inputmode: str


UNITS = {
    "money": Unit(2, MAX_MONEY, "1250.00", "", "decimal"),
    "litres": Unit(2, MAX_QUANTITY, "15000.5", "litres", "decimal"),
    "units": Unit(0, Decimal("9999999999"), "2000", "", "numeric"),
    "grams": Unit(0, Decimal("9999999999"), "500", "grams", "numeric"),
}


@dataclass(frozen=True)
class Figure:
    """One figure the person enters."""

    key: str
    label: str
    hint: str
    unit: str  # a key of UNITS
    noun: str  # "the total purchase price of accommodation": "Enter <noun>"
    short: str  # "Total purchase price": "<short> must be a number"
    word: str = ""  # after a count: "cigarettes"

    @property
    def spec(self) -> Unit:
        return UNITS[self.unit]


@dataclass(frozen=True)
class LineSpec:
    """A line the server works out: (sum of `plus` - sum of `minus`) at one rate."""

    key: str
    label: str
    rate_key: str
    plus: tuple[str, ...]
    minus: tuple[str, ...] = ()
    # When `minus` is more than `plus`: the message, beside the first of `minus`.
    too_much: str = ""
    percent: bool = False  # the rate is a percentage (else dollars per litre, gram or unit)


@dataclass(frozen=True)
class ProgramForm:
    program_code: str
    paper: str  # return | claim
    title: str  # "Tourism Levy return"
    intro: str
    figures: tuple[Figure, ...]
    lines: tuple[LineSpec, ...]
    total_label: str  # "Levy payable"

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.figures)

    @property
    def rate_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(line.rate_key for line in self.lines))


FORMS = {
    form.program_code: form
    for form in (
        ProgramForm(
            "TL",
            "return",
            "Tourism Levy return",
            "Operators of temporary accommodation pay a levy on the purchase price of the rooms they rent out. "
            "Enter what guests paid in the period; we work out the levy.",
            (
                Figure(
                    "accommodation_price",
                    "Total purchase price of temporary accommodation",
                    "Everything guests paid for rooms in the period, before GST and the levy, in dollars and cents",
                    "money",
                    "the total purchase price of accommodation",
                    "Total purchase price",
                ),
                Figure(
                    "exempt_price",
                    "Exempt accommodation included in that total",
                    "Stays of 28 days or more in a row and other accommodation the levy does not apply to. Enter 0 if "
                    "there was none",
                    "money",
                    "the price of exempt accommodation, or 0 if there was none",
                    "Exempt accommodation",
                ),
            ),
            (
                LineSpec(
                    "levy",
                    "Tourism levy",
                    "levy",
                    ("accommodation_price",),
                    ("exempt_price",),
                    too_much="Exempt accommodation cannot be more than the total purchase price",
                    percent=True,
                ),
            ),
            "Levy payable",
        ),
        ProgramForm(
            "FT",
            "return",
            "Fuel Tax return",
            "Licensed collectors report the taxable litres of fuel sold or used in Alberta in the period; we work "
            "out the tax at the rates of the period.",
            (
                Figure(
                    "gasoline_litres",
                    "Litres of gasoline",
                    "Taxable litres sold or used in Alberta in the period. Enter 0 if none. Up to 2 decimal places",
                    "litres",
                    "the litres of gasoline, or 0 if none",
                    "Litres of gasoline",
                ),
                Figure(
                    "diesel_litres",
                    "Litres of diesel",
                    "Taxable litres sold or used in Alberta in the period. Enter 0 if none. Up to 2 decimal places",
                    "litres",
                    "the litres of diesel, or 0 if none",
                    "Litres of diesel",
                ),
            ),
            (
                LineSpec("gasoline", "Fuel tax on gasoline", "gasoline", ("gasoline_litres",)),
                LineSpec("diesel", "Fuel tax on diesel", "diesel", ("diesel_litres",)),
            ),
            "Tax payable",
        ),
        ProgramForm(
            "TT",
            "return",
            "Tobacco Tax return",
            "Licensed collectors report the taxable tobacco sold in Alberta in the period; we work out the tax at "
            "the rates of the period.",
            (
                Figure(
                    "cigarettes",
                    "Number of cigarettes and tobacco sticks",
                    "A whole number. Enter 0 if none",
                    "units",
                    "the number of cigarettes and tobacco sticks, or 0 if none",
                    "Number of cigarettes",
                    word="cigarettes",
                ),
                Figure(
                    "fine_cut_grams",
                    "Grams of fine-cut and other tobacco",
                    "Fine-cut, pipe and chewing tobacco and snuff. Count part of a gram as a whole gram. Enter 0 if "
                    "none",
                    "grams",
                    "the grams of fine-cut and other tobacco, or 0 if none",
                    "Grams of fine-cut and other tobacco",
                ),
                Figure(
                    "cigar_price",
                    "Taxable price of cigars",
                    "The taxable price of all the cigars sold, in dollars and cents. Enter 0 if none",
                    "money",
                    "the taxable price of cigars, or 0 if none",
                    "Taxable price of cigars",
                ),
            ),
            (
                LineSpec("cigarettes", "Tax on cigarettes and tobacco sticks", "cigarette", ("cigarettes",)),
                LineSpec("fine_cut", "Tax on fine-cut and other tobacco", "fine_cut", ("fine_cut_grams",)),
                LineSpec("cigars", "Tax on cigars", "cigar", ("cigar_price",), percent=True),
            ),
            "Tax payable",
        ),
        ProgramForm(
            "ICT",
            "return",
            "Insurance Corporation Tax return",
            "Insurers report the premiums receivable in the year on contracts of insurance in Alberta; we work out "
            "the tax at the rates in force at the start of the year.",
            (
                Figure(
                    "life_premiums",
                    "Premiums for life, accident and sickness insurance",
                    "In dollars and cents. Enter 0 if none",
                    "money",
                    "the premiums for life, accident and sickness insurance, or 0 if none",
                    "Life, accident and sickness premiums",
                ),
                Figure(
                    "other_premiums",
                    "Premiums for all other insurance",
                    "Property, casualty and every other kind, in dollars and cents. Enter 0 if none",
                    "money",
                    "the premiums for all other insurance, or 0 if none",
                    "Premiums for other insurance",
                ),
            ),
            (
                LineSpec(
                    "life", "Tax on life, accident and sickness premiums", "life", ("life_premiums",), percent=True
                ),
                LineSpec("other", "Tax on other premiums", "other", ("other_premiums",), percent=True),
            ),
            "Tax payable",
        ),
        ProgramForm(
            "FTR",
            "claim",
            "Fuel Tax Refund claim",
            "Claim back the fuel tax paid on fuel used for an eligible purpose in the period. We work out the refund "
            "at the rate of the period.",
            (
                Figure(
                    "eligible_litres",
                    "Litres of tax-paid fuel used for an eligible purpose",
                    "Keep your fuel purchase invoices: we may ask for them. Up to 2 decimal places",
                    "litres",
                    "the litres of eligible fuel",
                    "Litres of eligible fuel",
                ),
            ),
            (LineSpec("refund", "Fuel tax refund", "refund", ("eligible_litres",)),),
            "Refund claimed",
        ),
    )
}

# Programs whose returns are not filed in this service, and where they are.
FILED_ELSEWHERE = {
    "CIT": "An Alberta corporate income tax return (the AT1) is not filed here. File it through net filing "
    "with certified tax software, or send the paper AT1 to us, within six months of the end of the tax "
    "year. Once we have it, its assessment status appears on the account's assessment status page.",
}
GENERIC_ELSEWHERE = (
    "Returns for this program are not filed through this service. Send your return to us as the "
    "program's instructions say; once we have it, its status appears on the assessment status page."
)

# The kinds of request and draft a filing makes.
KINDS = ("return", "claim", "amended_return", "amended_claim")


def form_for(program_code: str) -> ProgramForm | None:
    return FORMS.get(program_code)


def draft_kind(form: ProgramForm, amended: bool) -> str:
    return f"amended_{form.paper}" if amended else form.paper


def subject_for(period_end: date, amended: bool) -> str:
    return period_end.isoformat() + (":amended" if amended else "")


# --- Reading typed figures -----------------------------------------------------------

_NUMBER = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]*))?|\.([0-9]+)")
_SPACES = re.compile(r"[ \u00a0\u202f]")


def _plain(value: Decimal) -> str:
    return format(value, "f")


def parse_figure(figure: Figure, text) -> tuple[Decimal | None, str | None]:
    """The value of what was typed, or the message to show beside the field.
    Money takes "1,234.50" and "$1234.5"; nothing takes a minus, letters, more
    decimals than its unit has, or more than the house maximum."""
    unit = figure.spec
    raw = text.strip() if isinstance(text, str) else ""
    if not raw:
        return None, f"Enter {figure.noun}"
    not_a_number = f"{figure.short} must be a number, like {unit.example}"
    if len(raw) > MAX_TEXT and not re.fullmatch(r"[0-9,.$ ]+", raw):
        return None, not_a_number
    cleaned = _SPACES.sub("", raw)
    negative = cleaned[:1] in ("-", "\u2212")
    if negative:
        cleaned = cleaned[1:]
    if figure.unit == "money":
        cleaned = cleaned.removeprefix("$")
        if not negative and cleaned[:1] in ("-", "\u2212"):
            negative, cleaned = True, cleaned[1:]
    match = _NUMBER.fullmatch(cleaned)
    if match is None:
        return None, not_a_number
    if negative:
        return None, f"{figure.short} must be 0 or more"
    fraction = match.group(1) or match.group(2) or ""
    if unit.decimals == 0 and (fraction or "." in cleaned):
        return None, f"{figure.short} must be a whole number, like {unit.example}"
    if len(fraction) > unit.decimals:
        return None, f"{figure.short} must have no more than {unit.decimals} decimal places"
    value = Decimal(cleaned.replace(",", "") if not cleaned.startswith(".") else "0" + cleaned)
    if value > unit.maximum:
        return None, f"{figure.short} must be {show(figure, unit.maximum)} or less"
    return value.quantize(Decimal(1).scaleb(-unit.decimals)), None


def show(figure: Figure, value: Decimal) -> str:
    """A figure as the check page shows it: "$12,500.00", "15,000.50 litres", "2,000 cigarettes"."""
    if figure.unit == "money":
        return format_money(int((value * 100).to_integral_value()))
    number = f"{value:,.{figure.spec.decimals}f}"
    word = figure.word or figure.spec.word
    return f"{number} {word}".strip()


def stored(value: Decimal) -> str:
    return _plain(value)


@dataclass(frozen=True)
class Read:
    values: dict  # key -> Decimal, for the figures that are right
    errors: dict  # key -> message

    @property
    def ok(self) -> bool:
        return not self.errors


def read(form: ProgramForm, raw: dict) -> Read:
    """Every figure of the form from typed text (missing ones included)."""
    values, errors = {}, {}
    for figure in form.figures:
        value, message = parse_figure(figure, raw.get(figure.key))
        if message:
            errors[figure.key] = message
        else:
            values[figure.key] = value
    return Read(values, errors)


# --- Rates -------------------------------------------------------------------------


def rate_for(db: Session, program_code: str, rate_key: str, period_start: date) -> ProgramRate | None:
    """The rate in force on the period's first day: the latest `effective_from` on or before it."""
    return db.scalar(
        select(ProgramRate)
        .where(
            ProgramRate.program_code == program_code,
            ProgramRate.rate_key == rate_key,
            ProgramRate.effective_from <= period_start,
        )
        .order_by(ProgramRate.effective_from.desc())
        .limit(1)
    )


def rates_for(db: Session, form: ProgramForm, period_start: date) -> dict[str, ProgramRate]:
    """The form's rates for a period; a rate with no row in force is left out."""
    found = {key: rate_for(db, form.program_code, key, period_start) for key in form.rate_keys}
    return {key: row for key, row in found.items() if row is not None}


def rate_values(rates: dict) -> dict[str, Decimal]:
    return {key: (row if isinstance(row, Decimal) else Decimal(row.value)) for key, row in rates.items()}


_PER = {"per_litre": "litre", "per_gram": "gram"}


def _dollars(value: Decimal) -> str:
    """ "$0.13", "$0.00", "$0.275": at least the cents, and every digit the rate has."""
    return f"${value:.2f}" if value == value.quantize(CENT) else f"${_plain(value)}"


def rate_text(row: ProgramRate) -> str:
    """ "4%", "$0.13 per litre", "$0.30 per cigarette"."""
    value = Decimal(row.value)
    if row.unit == "percent":
        return rate_percent_text(value)
    dollars = _dollars(value)
    if row.unit == "per_unit":
        return f"{dollars} per cigarette" if row.rate_key == "cigarette" else f"{dollars} each"
    return f"{dollars} per {_PER.get(row.unit, row.unit.removeprefix('per_'))}"


def rate_percent_text(value: Decimal) -> str:
    return f"{int(value)}%" if value == value.to_integral_value() else f"{_plain(value)}%"


# --- Working out the lines -------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    key: str
    label: str
    rate_key: str
    base: Decimal  # what the rate applies to
    rate: Decimal
    cents: int
    description: str  # "4% of $12,000.00"


@dataclass(frozen=True)
class Computation:
    lines: tuple[Line, ...]
    total_cents: int


def _line(form: ProgramForm, spec: LineSpec, figures: dict, rate: Decimal) -> Line:
    base = sum((figures[k] for k in spec.plus), Decimal(0)) - sum((figures[k] for k in spec.minus), Decimal(0))
    amount = base * rate / 100 if spec.percent else base * rate
    cents = int((amount.quantize(CENT, rounding=ROUND_HALF_UP) * 100).to_integral_value())
    figure = form.figure(spec.plus[0])
    if spec.percent:
        description = f"{rate_percent_text(rate)} of {show(figure, base)}"
    else:
        description = f"{show(figure, base)} \u00d7 {_dollars(rate)}"
    return Line(spec.key, spec.label, spec.rate_key, base, rate, cents, description)


def compute(program_code: str, figures: dict, rates: dict) -> Computation:
    """The lines and the total, in cents, for right figures (Decimal) at these
    rates (rate key -> Decimal value, or ProgramRate rows)."""
    form = FORMS[program_code]
    values = rate_values(rates)
    lines = tuple(_line(form, spec, figures, values[spec.rate_key]) for spec in form.lines)
    return Computation(lines, sum(line.cents for line in lines))


def problems(form: ProgramForm, figures: dict, rates: dict) -> dict[str, str]:
    """What is wrong with right-looking figures taken together (key -> message):
    a line that goes below zero, a total beyond what the service takes, a rate
    missing for the period."""
    found = {}
    missing = [key for key in form.rate_keys if key not in rates]
    if missing:
        found[form.figures[0].key] = "We cannot work out this period online: contact us to file it"
        return found
    for spec in form.lines:
        if spec.minus and sum((figures[k] for k in spec.minus), Decimal(0)) > sum(
            (figures[k] for k in spec.plus), Decimal(0)
        ):
            found[spec.minus[0]] = spec.too_much
    if found:
        return found
    worked = compute(form.program_code, figures, rates)
    if worked.total_cents > MAX_CENTS:
        biggest = max(worked.lines, key=lambda line: line.cents)
        key = next(s for s in form.lines if s.key == biggest.key).plus[0]
        found[key] = (
            f"The {form.total_label.lower()} works out to more than {format_money(MAX_CENTS)}: "
            f"check {form.figure(key).short.lower()}"
        )
    return found


def preview(form: ProgramForm, raw: dict, rates: dict) -> tuple[list[tuple[LineSpec, Line | None]], int | None]:
    """Each line worked out when its own figures are right (else None), and the
    total when every figure is right: what the page shows while the person types."""
    got = read(form, raw)
    values = rate_values(rates)
    rows = []
    for spec in form.lines:
        keys = spec.plus + spec.minus
        if spec.rate_key in values and all(k in got.values for k in keys):
            line = _line(form, spec, got.values, values[spec.rate_key])
            rows.append((spec, line if line.base >= 0 else None))
        else:
            rows.append((spec, None))
    total = None
    if got.ok and not problems(form, got.values, rates):
        total = sum(line.cents for _spec, line in rows if line is not None)
    return rows, total


# --- Periods -------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenPeriod:
    start: date
    end: date
    due: date
    overdue: bool

    @property
    def text(self) -> str:
        return period_text(self.start, self.end)


@dataclass(frozen=True)
class FiledPeriod:
    start: date
    end: date
    latest: TaxReturn
    count: int

    @property
    def text(self) -> str:
        return period_text(self.start, self.end)


def parse_period_end(text: str) -> date | None:
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def period_of(db: Session, account: Account, period_end: date, today: date) -> FilingPeriod | None:
    """The account's filing period ending then, when it has ended; else None."""
    period = db.scalar(
        select(FilingPeriod).where(FilingPeriod.account_id == account.id, FilingPeriod.period_end == period_end)
    )
    if period is None or period.period_end >= today:
        return None
    return period


def returns_of_period(db: Session, account: Account, period_end: date) -> list[TaxReturn]:
    """Every return of the period, the latest first (received, then made)."""
    return list(
        db.scalars(
            select(TaxReturn)
            .where(TaxReturn.account_id == account.id, TaxReturn.period_end == period_end)
            .order_by(TaxReturn.received_on.desc(), TaxReturn.id.desc())
        )
    )


def latest_return(db: Session, account: Account, period_end: date) -> TaxReturn | None:
    found = returns_of_period(db, account, period_end)
    return found[0] if found else None


def periods(db: Session, account: Account, today: date) -> tuple[list[OpenPeriod], list[FiledPeriod]]:
    """The periods open for filing (ended, no return yet), oldest first, so the
    most overdue leads; and the filed ones, newest first, with their latest return."""
    rows = db.scalars(
        select(FilingPeriod)
        .where(FilingPeriod.account_id == account.id, FilingPeriod.period_end < today)
        .order_by(FilingPeriod.period_end)
    ).all()
    returns = db.scalars(
        select(TaxReturn)
        .where(TaxReturn.account_id == account.id)
        .order_by(TaxReturn.received_on.desc(), TaxReturn.id.desc())
    ).all()
    by_period: dict[date, list[TaxReturn]] = {}
    for tax_return in returns:
        by_period.setdefault(tax_return.period_end, []).append(tax_return)
    open_rows = [
        OpenPeriod(p.period_start, p.period_end, p.due_date, p.due_date < today)
        for p in rows
        if p.period_end not in by_period
    ]
    filed = [
        FiledPeriod(p.period_start, p.period_end, by_period[p.period_end][0], len(by_period[p.period_end]))
        for p in reversed(rows)
        if p.period_end in by_period
    ]
    return open_rows, filed


def open_drafts(db: Session, account: Account, user_id: int) -> list[Draft]:
    return list(
        db.scalars(
            select(Draft)
            .where(
                Draft.account_id == account.id,
                Draft.user_id == user_id,
                Draft.kind.in_(KINDS),
                Draft.submitted_request_id.is_(None),
            )
            .order_by(Draft.updated_at.desc(), Draft.id.desc())
        )
    )


def draft_period(draft: Draft) -> tuple[date | None, bool]:
    """The period end a draft is about, and whether it is an amendment."""
    end, _sep, flag = draft.subject.partition(":")
    return parse_period_end(end), flag == "amended"


# --- Submitting ----------------------------------------------------------------------


def summary_line(form: ProgramForm, period: str, amended: bool, total_cents: int) -> str:
    paper = f"Amended {form.title}" if amended else form.title
    return f"{paper} for {period}: {form.total_label.lower()} {format_money(total_cents)}"


def request_data(
    form: ProgramForm,
    period_start: date,
    period_end: date,
    amended: bool,
    figures: dict,
    worked: Computation,
    rates: dict[str, ProgramRate],
    amends: TaxReturn | None,
) -> dict:
    """The answers as submitted, plain and JSON-able, for the request history and staff."""
    return {
        "program": form.program_code,
        "period_start": period_start.isoformat(),
        "period_end": period_end.isoformat(),
        "period": period_text(period_start, period_end),
        "amended": amended,
        "amends_reference": amends.reference if amends is not None else None,
        "figures": {
            f.key: {"label": f.label, "value": stored(figures[f.key]), "shown": show(f, figures[f.key])}
            for f in form.figures
        },
        "lines": [
            {
                "label": line.label,
                "description": line.description,
                "cents": line.cents,
                "amount": format_money(line.cents),
                "rate": rates[line.rate_key].value,
                "rate_unit": rates[line.rate_key].unit,
                "rate_effective_from": rates[line.rate_key].effective_from.isoformat(),
            }
            for line in worked.lines
        ],
        "total_label": form.total_label,
        "total_cents": worked.total_cents,
        "total": format_money(worked.total_cents),
    }


class AlreadyFiled(Refused):
    """The period's first return was filed by someone else a moment before."""


def builder(
    *,
    account: Account,
    form: ProgramForm,
    period_end: date,
    amended: bool,
    figures: dict,
    worked: Computation,
    user_id: int,
    received_on: date,
    amends: TaxReturn | None,
):
    """What goes with a new request: the return or claim as received, and a
    message telling the account's people it arrived."""

    def build(db: Session, request: ServiceRequest) -> None:
        if not amended:
            # Two people (or two drafts) filing the period's first return at the same
            # moment: the period's row is locked (FOR UPDATE on PostgreSQL; on SQLite
            # the request's insert already holds the one write lock), so the second
            # finds the first's return here, once it is committed, and files nothing.
            db.execute(
                select(FilingPeriod.id)
                .where(FilingPeriod.account_id == account.id, FilingPeriod.period_end == period_end)
                .with_for_update()
            )
            if latest_return(db, account, period_end) is not None:
                raise AlreadyFiled(period_end)
        tax_return = TaxReturn(
            account_id=account.id,
            period_end=period_end,
            kind=form.paper,
            amended=amended,
            received_on=received_on,
            status="received",
            reference=request.reference,
            figures=json.dumps({k: stored(v) for k, v in figures.items()}, sort_keys=True),
            amount_cents=worked.total_cents,
            filed_by_user_id=user_id,
            service_request_id=request.id,
            amends_return_id=amends.id if amends is not None else None,
        )
        db.add(tax_return)
        db.flush()
        request.tax_return_id = tax_return.id
        paper = f"amended {form.title}" if amended else form.title
        period = json.loads(request.data or "{}").get("period") or f"the period ending {period_end:%-d %B %Y}"
        messages.return_received(
            db,
            request.submitted_at,
            received_on,
            account=account,
            paper=paper,
            period=period,
            reference=request.reference,
        )

    return build


def figures_of(tax_return: TaxReturn | None, form: ProgramForm) -> dict:
    """A filed return's figures as text, to start its amendment from."""
    if tax_return is None or not tax_return.figures:
        return {}
    try:
        data = json.loads(tax_return.figures)
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if k in form.keys and isinstance(v, str)} if isinstance(data, dict) else {}
