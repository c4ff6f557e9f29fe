"""The shape the developers' guide asks of the code (issue 19), read from the source:
no function in application code is longer than 60 lines, each journey's `check`
view is at most 25 (the send-once flow is shared), and no blueprint queries the
database itself (thin views: the queries live in domain/).

A function's length is counted from its `def` line through its last line, as
ruff formats it; a nested function is counted on its own and within its parent."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPLICATION_CODE = ("app.py", "commands.py", "config.py", "models.py", "demo.py", "blueprints", "domain", "web")
MAX_FUNCTION_LINES = 60
MAX_CHECK_VIEW_LINES = 25
JOURNEYS = ("filing", "objections", "waivers", "arrangements", "renewals", "direct_deposit")


def _files(*roots: str) -> list[Path]:
    found = []
    for root in roots:
        path = ROOT / root
        found += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return found


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    return (function.end_lineno or function.lineno) - function.lineno + 1


def _functions(path: Path):
    """(function, whether it is at the module's top level) for every function in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node, id(node) in top_level


def _journey_of(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    return parts[1] if len(parts) > 2 and parts[0] == "blueprints" and parts[1] in JOURNEYS else None


def _is_check_view(path: Path, function: ast.FunctionDef | ast.AsyncFunctionDef, top_level: bool) -> bool:
    """A journey's `check` view: the module-level, routed function of that name (a
    form's validator called check is not a view)."""
    return top_level and function.name == "check" and bool(function.decorator_list) and _journey_of(path) is not None


def _part(path: Path, function, top_level: bool) -> str:
    """Which part of issue 19 the function belongs to (the journeys' check views are
    the send-once flow's, web.journeys)."""
    return "the journeys' check views" if _is_check_view(path, function, top_level) else "everything else"


PARTS = ["everything else", "the journeys' check views"]


@pytest.mark.parametrize("part", PARTS)
def test_no_function_in_application_code_is_longer_than_60_lines(part):
    too_long = [
        f"{_name(path)}:{function.lineno} {function.name} ({_lines(function)} lines)"
        for path in _files(*APPLICATION_CODE)
        for function, top_level in _functions(path)
        if _part(path, function, top_level) == part and _lines(function) > MAX_FUNCTION_LINES
    ]
    assert not too_long, f"over {MAX_FUNCTION_LINES} lines, to split into well-named parts:\n" + "\n".join(too_long)


def test_the_function_count_reads_the_whole_application():
    """The measure above is not vacuous: it reads every root and finds the functions."""
    files = _files(*APPLICATION_CODE)
    assert {_name(path).split("/")[0] for path in files} >= {"app.py", "config.py", "blueprints", "domain", "web"}
    assert sum(1 for path in files for _ in _functions(path)) > 500


@pytest.mark.parametrize("journey", JOURNEYS)
def test_each_journeys_check_view_is_at_most_25_lines(journey):
    views = [
        (path, function)
        for path in _files(f"blueprints/{journey}")
        for function, top_level in _functions(path)
        if _is_check_view(path, function, top_level)
    ]
    assert views, f"blueprints/{journey} has no check view"
    too_long = [
        f"{_name(path)}:{function.lineno} check ({_lines(function)} lines)"
        for path, function in views
        if _lines(function) > MAX_CHECK_VIEW_LINES
    ]
    assert not too_long, f"over {MAX_CHECK_VIEW_LINES} lines (the send-once flow is shared):\n" + "\n".join(too_long)


def test_no_blueprint_queries_the_database_itself():
    found = [
        f"{_name(path)}:{number}: {line.strip()}"
        for path in _files("blueprints")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "select(" in line
    ]
    assert not found, "queries belong in domain/, the views call a domain function:\n" + "\n".join(found)
