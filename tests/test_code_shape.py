"""The shape the developers' guide asks of the code (issue 19), read from the source:
no function in application code is longer than 60 lines, no journey has a `check`
view of its own (the send-once flow is shared: web.journeys.check_route declares
the one view, at most 25 lines), and no blueprint queries the database itself
(thin views: the queries live in domain/).

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


def test_no_function_in_application_code_is_longer_than_60_lines():
    too_long = [
        f"{_name(path)}:{function.lineno} {function.name} ({_lines(function)} lines)"
        for path in _files(*APPLICATION_CODE)
        for function, _top_level in _functions(path)
        if _lines(function) > MAX_FUNCTION_LINES
    ]
    assert not too_long, f"over {MAX_FUNCTION_LINES} lines, to split into well-named parts:\n" + "\n".join(too_long)


def test_the_function_count_reads_the_whole_application():
    """The measure above is not vacuous: it reads every root and finds the functions."""
    files = _files(*APPLICATION_CODE)
    assert {_name(path).split("/")[0] for path in files} >= {"app.py", "config.py", "blueprints", "domain", "web"}
    assert sum(1 for path in files for _ in _functions(path)) > 500


@pytest.mark.parametrize("journey", JOURNEYS)
def test_no_journey_has_a_check_view_of_its_own(journey):
    """The check page is web.journeys' one view, declared by check_route."""
    own = [
        f"{_name(path)}:{function.lineno}"
        for path in _files(f"blueprints/{journey}")
        for function, top_level in _functions(path)
        if top_level and function.name == "check" and function.decorator_list
    ]
    assert not own, "declare the check page with journeys.check_route:\n" + "\n".join(own)
    assert "journeys.check_route(" in (ROOT / "blueprints" / journey / "__init__.py").read_text(encoding="utf-8")


def test_the_one_check_view_is_at_most_25_lines():
    """check_route's view, which hands the journey to journeys.check (the flow itself)."""
    found = {function.name: function for function, _top_level in _functions(ROOT / "web" / "journeys.py")}
    assert "journeys.check(" not in ast.unparse(found["check_page"])  # it calls the flow, named check there
    assert "check(journey(account, grant, **values))" in ast.unparse(found["check_page"])
    assert _lines(found["check_page"]) <= MAX_CHECK_VIEW_LINES


def test_no_blueprint_queries_the_database_itself():
    found = [
        f"{_name(path)}:{number}: {line.strip()}"
        for path in _files("blueprints")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "select(" in line
    ]
    assert not found, "queries belong in domain/, the views call a domain function:\n" + "\n".join(found)
