"""Tables on a phone (issue 20, item 1): the `table` macro labels each body cell with
its column's header, which the stylesheet shows as "Header: value" lines at 40em
and narrower, and keeps dates on one line. The browser test that every page fits
320 px is tests/browser/test_narrow_screens.py."""

from __future__ import annotations

import re
from pathlib import Path

from tests.accounts_factory import busy_history, give, open_account, sessionmaker_of, signed_in
from tests.conftest import make_user
from web.tables import label_cells

ROOT = Path(__file__).resolve().parent.parent

HEAD = (
    "<thead><tr><th>Date</th><th>What</th><th class=num>Amount</th>"
    '<th><span class="visually-hidden">Actions</span></th></tr></thead>'
)


def test_each_body_cell_is_labelled_with_its_columns_header():
    body = HEAD + "<tbody><tr><td>x<td>Payment<td>$5.00<td><a href=/>Change</a></tbody>"
    out = label_cells(body)
    assert '<td data-label="What">Payment' in out and '<td data-label="Amount">$5.00' in out
    assert '<td data-label="Date">x' in out
    # A header only screen readers see labels nothing; the head itself is unchanged.
    assert "<td><a href=/>Change</a>" in out and out.startswith(HEAD)


def test_row_headers_and_spanning_cells_stay_unlabelled_and_rowspans_keep_columns_in_line():
    head = "<thead><tr><th>When</th><th>Field</th><th>Value</th></tr></thead>"
    body = (
        head + '<tbody><tr><td rowspan="2">today</td><td>Email</td><td>a@b.example</td></tr>'
        "<tr><td>Phone</td><td>403</td></tr>"
        '<tr><th scope="row">Name</th><td>Ann</td><td>Lee</td></tr>'
        '<tr><td colspan="3">No more changes.</td></tr></tbody>'
    )
    out = label_cells(body)
    assert '<td data-label="When" rowspan="2">today' in out
    assert '<td data-label="Field">Phone</td><td data-label="Value">403' in out
    assert '<th scope="row">Name</th><td data-label="Field">Ann' in out
    assert '<td colspan="3">No more changes.' in out


def test_a_label_is_escaped_once_and_a_table_without_a_head_is_left_unlabelled():
    out = label_cells('<thead><tr><th>Tom &amp; Jerry "TJ"</th></tr></thead><tbody><tr><td>1</td></tr></tbody>')
    assert '<td data-label="Tom &amp; Jerry &quot;TJ&quot;">1' in out
    assert label_cells("<tbody><tr><th>Name</th><td>Ann</td></tr></tbody>") == (
        "<tbody><tr><th>Name</th><td>Ann</td></tr></tbody>"
    )


def test_a_cell_that_opens_with_a_date_keeps_it_on_one_line_and_its_text_unchanged():
    body = (
        HEAD + '<tbody><tr><td>7 Dec 2026<td class="meta">30 September 2026<span class=meta>by 5 pm</span>'
        '<td>Due 2 Jan 2026<td><a href="/x">1 Jan 2026</a></tbody>'
    )
    out = label_cells(body)
    assert '<td data-label="Date" class="nowrap">7 Dec 2026' in out
    assert '<td data-label="What" class="nowrap meta">30 September 2026<span class=meta>' in out
    assert '<td data-label="Amount">Due 2 Jan 2026' in out and '<td><a href="/x">1 Jan 2026</a>' in out


def test_the_transactions_stylesheet_labels_its_columns_by_position_as_its_head_names_them(app, clock):
    """A page of transactions is swapped 50 rows at a time within a byte budget, so its
    cells carry no data-label: the stylesheet labels them by position. Those labels
    must be the headers, in order."""
    owner = make_user(app, email="owner@example.com")
    with sessionmaker_of(app)() as db:
        account = open_account(db, serial=11, legal_name="Busy Hotel Inc.", operating_name=None)
        busy_history(db, account)
        give(db, clock(), owner, account)
        db.commit()
        number = account.number
    page = signed_in(app, "owner@example.com").get(f"/accounts/{number}/transactions").get_data(as_text=True)
    assert 'class="table table--money-last"' in page and "data-label=" not in page
    assert page.count("<tr><td>") == 50
    # The swap leaves out the optional end tags (</th>, </thead>) to stay within its bytes.
    head = re.search(r"<thead>(.*?)(?:</thead>|<tbody>)", page[page.index("table--money-last") :], re.S).group(1)
    headers = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.split(r"<th[^>]*>", head)[1:]]
    css = (ROOT / "static/css/site.css").read_text(encoding="utf-8")
    by_position = re.findall(r'\.table--money-last td:nth-child\((\d)\)::before \{ content: "([^"]+): "', css)
    assert [label for _, label in by_position] == headers
    assert [int(n) for n, _ in by_position] == list(range(1, len(headers) + 1))
