"""The financial transactions filter and the statement of account: GET forms (no CSRF
token: they change nothing)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from flask_wtf import FlaskForm
from wtforms import StringField

from domain.ledger import TransactionFilter
from domain.statements import END_WHAT, KINDS, START_WHAT
from models import LEDGER_KINDS
from web.forms import DateInputField, add_error, radio_field

MODES = (("processed", "By processed date range"), ("period", "By period end"))
KIND_CHOICES = (("all", "All types"), *tuple((kind, kind.capitalize()) for kind in LEDGER_KINDS))
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(text: str | None) -> tuple[date | None, bool]:
    """(the day, whether the text was a real YYYY-MM-DD date); blank is no day and fine."""
    text = (text or "").strip()
    if not text:
        return None, True
    if not _ISO_DAY.match(text):
        return None, False
    try:
        return date.fromisoformat(text), True
    except ValueError:
        return None, False


class TransactionFilterForm(FlaskForm):
    class Meta:
        csrf = False

    mode = StringField("How do you want to find transactions?", id="filter-mode", default="processed")
    date_from = DateInputField(
        "Start date",
        name="from",
        id="filter-from",
        what="The start date",
        description="Processed on or after this day, for example 1 11 2026. Leave it empty for no limit",
    )
    date_to = DateInputField(
        "End date",
        name="to",
        id="filter-to",
        what="The end date",
        description="Processed on or before this day. Leave it empty for no limit",
    )
    period = StringField("Period end", id="filter-period")
    kind = StringField("Transaction type", name="type", id="filter-type", default="all")

    def __init__(
        self, formdata, period_ends: Callable[[], list[date]], period_known: Callable[[date], bool] | None = None
    ):
        super().__init__(formdata=formdata)
        self._load_period_ends = period_ends
        self._period_ends: list[date] | None = None
        # Checking one period is cheaper than listing them all, which only the page's list needs.
        self._period_known = period_known or (lambda day: day in self.period_ends)

    @property
    def period_ends(self) -> list[date]:
        """The account's period ends, read only when the page needs them for its
        list: a results fragment does not."""
        if self._period_ends is None:
            self._period_ends = self._load_period_ends()
        return self._period_ends

    @property
    def chosen_mode(self) -> str:
        """The mode to show as chosen: none when the one given is not a mode."""
        mode = (self.mode.data or "processed").strip()
        return mode if mode in dict(MODES) else ""

    def to_filter(self) -> TransactionFilter | None:
        """The filter, or None with a message beside each field that is wrong.
        Only the fields of the chosen mode are read."""
        self.validate()
        mode = (self.mode.data or "processed").strip()
        kind = (self.kind.data or "all").strip()
        if mode not in dict(MODES):
            add_error(self.mode, "Choose how to find transactions")
        if kind not in dict(KIND_CHOICES):
            add_error(self.kind, "Choose a transaction type from the list")
        start = end = period = None
        if mode == "processed":
            start, end = self.date_from.data, self.date_to.data
            if start and end and start > end:
                self.date_from.show_problem("The start date must be on or before the end date")
        else:  # the dates are not asked for: nothing to say about them
            self.date_from.errors = self.date_to.errors = []
        if mode == "period":
            text = (self.period.data or "").strip()
            period, period_ok = parse_day(text)
            if not text:
                add_error(self.period, "Choose a period end")
            elif not period_ok or period is None or not self._period_known(period):
                add_error(self.period, "Choose a period this account has")
        if self.errors:
            return None
        return TransactionFilter(
            mode=mode, processed_from=start, processed_to=end, period_end=period, kind=None if kind == "all" else kind
        )


def filter_params(flt: TransactionFilter) -> dict[str, str]:
    """The query string of a filter, only what it uses: for links and the CSV."""
    params = {"mode": flt.mode}
    if flt.mode == "period":
        if flt.period_end is not None:
            params["period"] = flt.period_end.isoformat()
    else:
        if flt.processed_from:
            params["from"] = flt.processed_from.isoformat()
        if flt.processed_to:
            params["to"] = flt.processed_to.isoformat()
    if flt.kind:
        params["type"] = flt.kind
    return params


class StatementForm(FlaskForm):
    """The statement of account: a GET form (no CSRF token: it makes a PDF and changes
    nothing). Its rules are domain.statements.check_request's; it only carries the answers."""

    class Meta:
        csrf = False

    kind = radio_field("What should the statement cover?", "kind", KINDS)
    period = StringField("Period end", id="period")
    # Checked by the domain (checked=False): the view puts its messages beside the box.
    date_from = DateInputField("Start date", name="from", id="from", what=START_WHAT, checked=False)
    date_to = DateInputField("End date", name="to", id="to", what=END_WHAT, checked=False)

    @property
    def sent(self) -> bool:
        """Whether the form was sent (it names what to cover, even if blank), not just opened."""
        return bool(self.kind.raw_data)

    def answers(self) -> dict[str, str]:
        """What was typed, box by box: kind, period and from_day … to_year."""
        typed = {"kind": self.kind.data or "", "period": self.period.data or ""}
        for field in (self.date_from, self.date_to):
            typed |= {field.part_name(part): text for part, text in field.parts.items()}
        return typed

    def show_problems(self, found: dict[str, str]) -> None:
        """The domain's messages beside their fields; a date's beside the box it is about."""
        dated = {"from": self.date_from, "to": self.date_to}
        for name, message in found.items():
            prefix, _, part = name.partition("_")
            if prefix in dated:
                dated[prefix].show_problem(message, part)
            else:
                add_error(getattr(self, name), message)
