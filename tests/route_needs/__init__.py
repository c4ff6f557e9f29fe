"""The permission each account route needs, one module per feature, so features
can be added without editing one shared table. A module defines NEEDS
(endpoint -> the permissions any one of which allows it) and, when its URLs name
more than the account, `extend(db, account, now, table)` to add what they name
(an id, a reference) to the test table. tests/test_delegation.py merges them."""

from __future__ import annotations

import importlib
import pkgutil


def _modules():
    return [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]


def collected() -> dict[str, set[str]]:
    needs: dict[str, set[str]] = {}
    for module in _modules():
        overlap = set(needs) & set(module.NEEDS)
        assert not overlap, f"{module.__name__} repeats {sorted(overlap)}"
        needs.update(module.NEEDS)
    return needs


def extend_table(db, account, now, table: dict) -> None:
    for module in _modules():
        extend = getattr(module, "extend", None)
        if extend is not None:
            extend(db, account, now, table)
