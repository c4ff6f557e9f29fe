"""A page title says "Error: " once when the page shows a problem: base.html is the
one place that adds it (a page whose problem is not its `form`'s errors sets
`page_errors`), so no title can read "Error: Error:" again."""

from __future__ import annotations

import re
from pathlib import Path

from tests.accounts_factory import body, signed_in
from tests.conftest import csrf_from, make_user

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_only_the_base_layout_writes_error_into_a_title():
    writers = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if re.search(r"\{% block title %\}[^\n]*Error:", path.read_text())
    ]
    assert writers == []
    assert "Error: {% endif %}{% block title %}" in (TEMPLATES / "base.html").read_text()


def _title(page: str) -> str:
    return re.search(r"<title>(.*?)</title>", page, re.S).group(1)


def test_a_form_with_errors_has_error_once_in_its_title(app):
    make_user(app, email="asker@example.com", name="Avery Asker")
    client = signed_in(app, "asker@example.com")
    token = csrf_from(body(client.get("/consents/ask")))
    response = client.post("/consents/ask", data={"csrf_token": token})
    assert response.status_code == 400
    title = _title(body(response))
    assert title.startswith("Error: ") and "Error: Error:" not in title and title.count("Error:") == 1
    assert "Error:" not in _title(body(client.get("/consents/ask")))
