"""Tables that read on a phone: each body cell labelled with its column's header.

At 320 px a table of five or more columns is wider than the screen. On a narrow
screen the stylesheet stacks each row into a block of "Label: value" lines
(`td::before { content: attr(data-label) }`), keeping the <table> markup, so a
screen reader still reads it as a table. The label has to be on every cell, and
the `table` macro (templates/macros/components.html) puts it there: its body
passes through `label_cells`, so no template repeats its headers by hand.

The same pass keeps dates whole: a cell that opens with a date gets class="nowrap",
so a desktop table that runs out of width wraps names and words, never "7 Dec / 2026".

It reads only start tags and text, never end tags: the transactions rows leave out
the end tags HTML lets them omit (a 50-row swap has a byte budget).
"""

from __future__ import annotations

import html
import re

from markupsafe import Markup

HEAD = re.compile(r"<thead\b.*?</thead>", re.S | re.I)
HEADER_CELL = re.compile(r"<th\b([^>]*)>(.*?)</th>", re.S | re.I)
HIDDEN = re.compile(r'<span class="visually-hidden">.*?</span>', re.S)
TAG = re.compile(r"(<[^>]*>)")
ROW = re.compile(r"<tr\b", re.I)
ROW_OR_CELL = re.compile(r"<tr\b|<(?:td|th)\b[^>]*>", re.I)
SPAN = re.compile(r'\b(colspan|rowspan)="?(\d+)', re.I)
MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
DATE = re.compile(rf"\b\d{{1,2}} (?:{MONTHS})[a-z]* \d{{4}}\b")
CLASS = re.compile(r'\sclass="')


def label_cells(body: str) -> Markup:
    """The table's head and body (the macro's call block), each body cell given
    `data-label` from its column's header, and each date cell kept on one line."""
    # `body` is the template's own output, escaped as it was rendered; what is added
    # is tags and attributes, the labels escaped (html.escape): so it stays Markup.
    body = str(body)
    head = HEAD.search(body)
    if head is None:
        return Markup(_keep_dates_whole(body))  # nosec B704
    labels = _column_labels(head.group(0))
    rest = _label_rows(body[head.end() :], labels)
    return Markup(body[: head.end()] + _keep_dates_whole(rest))  # nosec B704


def _column_labels(head: str) -> list[str]:
    """The text of each column's header in the head's last row, one per column
    (a header spanning two columns labels both); "" for a header only screen
    readers see, such as "Actions", which a stacked row does not need."""
    last_row = ROW.split(head)[-1]
    labels: list[str] = []
    for attributes, content in HEADER_CELL.findall(last_row):
        text = html.unescape(TAG.sub("", HIDDEN.sub("", content)))
        labels += [" ".join(text.split())] * _span(attributes, "colspan")
    return labels


def _label_rows(rows: str, labels: list[str]) -> str:
    """Every <td> start tag given its column's label. Row headers (<th>) head the
    stacked block and stay unlabelled; so does a cell spanning several columns
    (a "none yet" line). Cells held down from a row above (rowspan) are skipped."""
    out: list[str] = []
    position, column = 0, 0
    held: dict[int, int] = {}  # column -> rows it is still held down for
    for match in ROW_OR_CELL.finditer(rows):
        tag = match.group(0)
        if tag.lower() == "<tr":
            column, held = 0, {c: n - 1 for c, n in held.items() if n > 1}
            continue
        while held.get(column):
            column += 1
        columns = _span(tag, "colspan")
        rowspan = _span(tag, "rowspan")
        if rowspan > 1:
            held[column] = rowspan
        label = labels[column] if columns == 1 and column < len(labels) else ""
        if tag[:3].lower() == "<td" and label and "data-label" not in tag:
            out += [rows[position : match.start()], f'<td data-label="{html.escape(label)}"{tag[3:]}']
            position = match.end()
        column += columns
    return "".join(out) + rows[position:]


def _span(attributes: str, name: str) -> int:
    found = {key.lower(): int(value) for key, value in SPAN.findall(attributes)}
    return max(1, found.get(name, 1))


def _keep_dates_whole(markup: str) -> str:
    """Each cell that opens with a date (a date, perhaps with a line in a <span>
    after it) given class="nowrap". The cell's text is left as it is."""
    parts = TAG.split(markup)
    for index in range(2, len(parts), 2):
        before = parts[index - 1]
        if before[:3].lower() == "<td" and DATE.fullmatch(parts[index].strip()):
            if CLASS.search(before):
                parts[index - 1] = CLASS.sub(r"\g<0>nowrap ", before, count=1)
            else:
                parts[index - 1] = before[:-1] + ' class="nowrap">'
    return "".join(parts)
