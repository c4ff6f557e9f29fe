"""URL converters, registered by the app factory: a value that cannot name a row is
a 404 from the router, before any view runs or any query is made.

- `<account:number>`: an account number as domain.accounts makes them (ten ASCII
  digits, the last the Luhn check digit of the others).
- `<id:name>`: a row id, 1 to models.MAX_ID, in ASCII digits.
"""

from __future__ import annotations

from werkzeug.routing import BaseConverter, IntegerConverter, ValidationError

from domain.accounts import NUMBER_LENGTH, luhn_digit
from models import MAX_ID


class AccountNumberConverter(BaseConverter):
    regex = f"[0-9]{{{NUMBER_LENGTH}}}"
    weight = 50  # as specific as a number: tried before a plain string in the same place

    def to_python(self, value: str) -> str:
        if luhn_digit(value[:-1]) != value[-1]:
            raise ValidationError()  # no account has this number: the router answers 404
        return value


class IdConverter(IntegerConverter):
    # ASCII digits only (`\d` would take "١٢٣"), and no more than MAX_ID has: a longer
    # run never reaches int().
    regex = f"[0-9]{{1,{len(str(MAX_ID))}}}"

    def __init__(self, map) -> None:
        super().__init__(map, min=1, max=MAX_ID)


CONVERTERS = {"account": AccountNumberConverter, "id": IdConverter}
