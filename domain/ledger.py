"""The ledger: posting entries (never changing them) and reading them back the
ways the views need: balances, period balances, and the filtered transactions
with a running balance, a page at a time by keyset (no OFFSET)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, bindparam, func, select, tuple_
from sqlalchemy.orm import Session

from models import LEDGER_KINDS, FilingPeriod, LedgerEntry

PAGE_SIZE = 50
# The prefix of each kind's generated reference ("PEN-7KQ4-M2XD"); the letters are
# those of a request's reference (no 0/O, 1/I), so neither is misread on the phone.
REFERENCE_PREFIXES = {
    "assessment": "ASM",
    "payment": "PAY",
    "penalty": "PEN",
    "interest": "INT",
    "refund": "RFD",
    "transfer": "TRF",
    "adjustment": "ADJ",
    "reversal": "REV",
}
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_reference(kind: str) -> str:
    """An entry's own reference, "PEN-7KQ4-M2XD": random (32^8 of them a prefix), so
    it says nothing about how many entries there are, and no two entries a request
    posts share one. The request an entry came from is its `request_reference`."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{REFERENCE_PREFIXES[kind]}-{body[:4]}-{body[4:]}"


# The kinds whose description is the reason for them: a charge the person did not
# ask for, or a correction. The transactions page shows it under the type.
REASON_KINDS = frozenset({"penalty", "interest", "adjustment", "reversal"})


def post(
    db: Session,
    *,
    account_id: int,
    kind: str,
    amount_cents: int,
    effective_date: date,
    processed_date: date,
    reference: str,
    period_end: date | None = None,
    description: str = "",
    reverses_id: int | None = None,
    request_reference: str | None = None,
) -> LedgerEntry:
    if kind not in LEDGER_KINDS:
        raise ValueError(f"unknown ledger kind {kind!r}")
    if not isinstance(amount_cents, int):
        raise TypeError("amounts are integer cents")
    entry = LedgerEntry(
        account_id=account_id,
        kind=kind,
        amount_cents=amount_cents,
        effective_date=effective_date,
        processed_date=processed_date,
        reference=reference,
        period_end=period_end,
        description=description,
        reverses_id=reverses_id,
        request_reference=request_reference,
    )
    db.add(entry)
    return entry


def reverse(db: Session, entry: LedgerEntry, *, processed_date: date, reference: str, reason: str) -> LedgerEntry:
    """A correction is a new entry of the opposite amount that names the one it undoes."""
    return post(
        db,
        account_id=entry.account_id,
        kind="reversal",
        amount_cents=-entry.amount_cents,
        effective_date=entry.effective_date,
        processed_date=processed_date,
        reference=reference,
        period_end=entry.period_end,
        description=reason,
        reverses_id=entry.id,
    )


def balance(db: Session, account_id: int) -> int:
    return (
        db.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(LedgerEntry.account_id == account_id)
        )
        or 0
    )


def balances(db: Session, account_ids: list[int]) -> dict[int, int]:
    if not account_ids:
        return {}
    rows = db.execute(
        select(LedgerEntry.account_id, func.sum(LedgerEntry.amount_cents))
        .where(LedgerEntry.account_id.in_(account_ids))
        .group_by(LedgerEntry.account_id)
    )
    found = {account_id: int(total) for account_id, total in rows}
    return {account_id: found.get(account_id, 0) for account_id in account_ids}


def period_balances(db: Session, account_id: int) -> dict[date, int]:
    rows = db.execute(
        select(LedgerEntry.period_end, func.sum(LedgerEntry.amount_cents))
        .where(LedgerEntry.account_id == account_id, LedgerEntry.period_end.is_not(None))
        .group_by(LedgerEntry.period_end)
    )
    # The query leaves out entries with no period; the test tells the type checker so.
    return {period_end: int(total) for period_end, total in rows if period_end is not None}


def unallocated_balance(db: Session, account_id: int) -> int:
    """What belongs to no filing period of the account: entries with no period (a
    credit transferred in, a payment not yet applied) or with a period end the
    account has no filing period for. With the period balances it makes up the
    account's balance, so the summary's lines add up to it."""
    known = select(FilingPeriod.period_end).where(FilingPeriod.account_id == account_id)
    return int(
        db.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
                LedgerEntry.account_id == account_id,
                LedgerEntry.period_end.is_(None) | LedgerEntry.period_end.not_in(known),
            )
        )
        or 0
    )


@dataclass(frozen=True)
class TransactionFilter:
    """Either a processed-date range or one period end (seed: "by processed date
    ranges or period end"), optionally one kind of transaction."""

    mode: str = "processed"  # "processed" or "period"
    processed_from: date | None = None
    processed_to: date | None = None
    period_end: date | None = None
    kind: str | None = None


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after this (processed date, id), newest first."""

    processed_date: date
    entry_id: int

    def token(self) -> str:
        return f"{self.processed_date.isoformat()}.{self.entry_id}"

    @classmethod
    def parse(cls, token: str | None) -> Cursor | None:
        if not token:
            return None
        try:
            day, entry_id = token.split(".")
            cursor = cls(date.fromisoformat(day), int(entry_id))
        except ValueError:
            return None
        # An id no BIGINT can hold would fail in the database, not here.
        return cursor if 0 <= cursor.entry_id < 2**63 else None


@dataclass(frozen=True)
class BoundQuery:
    """A statement and the values of its parameters, executed as `conn.execute(q.statement, q.params)`."""

    statement: Select
    params: dict


# One statement per shape of filter, built once: building a SELECT with a window
# and a subquery costs more than running it on an indexed account (see
# docs/performance.md), so each request only binds its values.
_TRANSACTION_SHAPES: dict[tuple, Select] = {}


def _transactions_shape(
    by_period: bool, has_from: bool, has_to: bool, has_kind: bool, has_after: bool, limit: int | None
) -> Select:
    key = (by_period, has_from, has_to, has_kind, has_after, limit)
    statement = _TRANSACTION_SHAPES.get(key)
    if statement is not None:
        return statement
    e = LedgerEntry
    running = (
        select(
            e.id,
            e.kind,
            e.period_end,
            e.effective_date,
            e.processed_date,
            e.amount_cents,
            e.reference,
            e.description,
            func.sum(e.amount_cents).over(order_by=(e.processed_date, e.id), rows=(None, 0)).label("balance_after"),
        )
        .where(e.account_id == bindparam("account_id"))
        .subquery("running")
    )
    statement = select(running)
    if by_period:
        statement = statement.where(running.c.period_end == bindparam("period_end"))
    if has_from:
        statement = statement.where(running.c.processed_date >= bindparam("processed_from"))
    if has_to:
        statement = statement.where(running.c.processed_date <= bindparam("processed_to"))
    if has_kind:
        statement = statement.where(running.c.kind == bindparam("kind"))
    if has_after:
        statement = statement.where(
            tuple_(running.c.processed_date, running.c.id) < tuple_(bindparam("after_date"), bindparam("after_id"))
        )
    statement = statement.order_by(running.c.processed_date.desc(), running.c.id.desc())
    if limit is not None:
        statement = statement.limit(limit)
    _TRANSACTION_SHAPES[key] = statement
    return statement


def transactions_query(
    account_id: int, flt: TransactionFilter, after: Cursor | None = None, limit: int | None = None
) -> BoundQuery:
    """Newest first, each row with the account's balance after it. The running
    balance is over every entry of the account (a window), then the filter and
    the keyset apply, so a filtered page still shows true balances."""
    by_period = flt.mode == "period"
    params: dict = {"account_id": account_id}
    if by_period:
        params["period_end"] = flt.period_end
    else:
        if flt.processed_from:
            params["processed_from"] = flt.processed_from
        if flt.processed_to:
            params["processed_to"] = flt.processed_to
    if flt.kind:
        params["kind"] = flt.kind
    if after is not None:
        params["after_date"], params["after_id"] = after.processed_date, after.entry_id
    statement = _transactions_shape(
        by_period, "processed_from" in params, "processed_to" in params, "kind" in params, after is not None, limit
    )
    return BoundQuery(statement, params)


def transactions_page(
    db: Session, account_id: int, flt: TransactionFilter, after: Cursor | None = None, size: int = PAGE_SIZE
) -> tuple[list, Cursor | None]:
    query = transactions_query(account_id, flt, after, limit=size + 1)
    # Plain rows, so the Core connection runs it: the ORM adds nothing here but time.
    rows = db.connection().execute(query.statement, query.params).all()
    more = len(rows) > size
    rows = list(rows[:size])
    return rows, (Cursor(rows[-1].processed_date, rows[-1].id) if more else None)


def period_ends(db: Session, account_id: int) -> list[date]:
    return list(
        db.scalars(
            select(LedgerEntry.period_end)
            .where(LedgerEntry.account_id == account_id, LedgerEntry.period_end.is_not(None))
            .distinct()
            .order_by(LedgerEntry.period_end.desc())
        )
    )


_HAS_PERIOD = (
    select(LedgerEntry.id)
    .where(LedgerEntry.account_id == bindparam("account_id"), LedgerEntry.period_end == bindparam("day"))
    .limit(1)
)


def has_period(db: Session, account_id: int, day: date) -> bool:
    """Whether the account has any entry for the period ending on this day."""
    return db.connection().execute(_HAS_PERIOD, {"account_id": account_id, "day": day}).first() is not None


def stream_transactions(db: Session, account_id: int, flt: TransactionFilter, batch: int = 500):
    """Every row the filter selects, newest first, fetched `batch` at a time (a
    server-side cursor on PostgreSQL), for exports of any size."""
    query = transactions_query(account_id, flt)
    result = db.connection().execute(query.statement, query.params, execution_options={"yield_per": batch})
    yield from result
