"""Issue 20, item 11: a person types every date one way, the GOV.UK day/month/year
date input (web.forms.DateInputField and the date_input macro). No template offers
the browser's date picker and no form reads a date as a bare DateField or as
year-month-day text; the reader words problems the GOV.UK way."""

from __future__ import annotations

import importlib
import pkgutil
import re
from datetime import date
from pathlib import Path

import pytest
from wtforms import DateField, DateTimeLocalField, Field, Form, StringField
from wtforms.fields import DateTimeField

import blueprints
from domain.dates import parse_parts
from web.forms import DateInputField

ROOT = Path(__file__).resolve().parents[1]
# A text field whose label, id or hint says it holds a date.
DATE_WORDS = re.compile(r"\bdate\b|opened|starts?_on|ends?_on|year-month-day|\d{4}-\d{2}-\d{2}", re.I)


def _form_classes():
    for info in pkgutil.walk_packages(blueprints.__path__, "blueprints."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Form) and value.__module__ == module.__name__:
                yield value


def _unbound_fields(form_class):
    for name in dir(form_class):
        value = getattr(form_class, name, None)
        if hasattr(value, "field_class"):
            yield name, value


def test_no_template_offers_the_browsers_date_picker():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "templates").rglob("*.html")
        if re.search(r"""type=["']?(date|datetime-local|month|week)\b""", path.read_text())
    ]
    assert offenders == []


def test_no_form_reads_a_date_as_a_date_field_or_text():
    found = []
    classes = list(_form_classes())
    assert len(classes) > 20, "the blueprints' forms were found"
    for form_class in classes:
        for name, unbound in _unbound_fields(form_class):
            field_class = unbound.field_class
            if issubclass(field_class, DateField | DateTimeField | DateTimeLocalField):
                found.append(f"{form_class.__name__}.{name}: {field_class.__name__}")
            elif issubclass(field_class, StringField) and not issubclass(field_class, DateInputField):
                words = " ".join([name, str(unbound.args[:1]), str(unbound.kwargs.get("description", ""))])
                if DATE_WORDS.search(words):
                    found.append(f"{form_class.__name__}.{name}: a date typed as text?")
    assert found == []


def test_date_fields_are_date_inputs():
    names = {
        f"{cls.__name__}.{name}"
        for cls in _form_classes()
        for name, unbound in _unbound_fields(cls)
        if issubclass(unbound.field_class, DateInputField)
    }
    assert {
        "ConsentForm.starts_on",
        "ConsentForm.ends_on",
        "RegisterAccountForm.opened_on",
        "EntryForm.effective_date",
    } <= names
    assert {"AuditFilterForm.date_from", "TransactionFilterForm.date_to", "ProposeForm.first"} <= names


@pytest.mark.parametrize(
    "parts, expected",
    [
        (("", "", ""), (None, None, "date")),
        (("5", "", "2026"), (None, "The start date must include a month", "month")),
        (("", "", "2026"), (None, "The start date must include a day and month", "day")),
        (("31", "4", "2026"), (None, "The start date must be a real date", "day")),
        (("1", "13", "2026"), (None, "The start date must be a real date", "month")),
        (("1st", "1", "2026"), (None, "The start date must be a real date", "day")),
        (("1", "1", "26"), (None, "Year must include 4 numbers", "year")),
        ((" 29", "2 ", "2028"), (date(2028, 2, 29), None, "date")),
    ],
)
def test_the_gov_uk_messages(parts, expected):
    assert parse_parts(*parts, "The start date") == expected


class _Example(Form):
    when = DateInputField("When", what="The date", required="Enter the date")


def test_the_field_points_at_the_first_wrong_box():
    from werkzeug.datastructures import MultiDict

    form = _Example(MultiDict({"when_day": "3", "when_month": "", "when_year": "20x6"}))
    assert not form.validate()
    assert form.when.errors == ["The date must include a month"] and form.when.error_target == "when_month"
    assert form.when.flagged("month") and not form.when.flagged("day")
    form = _Example(MultiDict({"when_day": "", "when_month": "", "when_year": ""}))
    assert not form.validate() and form.when.errors == ["Enter the date"] and form.when.error_target == "when_day"
    form = _Example(MultiDict({"when_day": "07", "when_month": "3", "when_year": "2027"}))
    assert form.validate() and form.when.data == date(2027, 3, 7)
    assert isinstance(form.when, Field) and form.when.parts == {"day": "07", "month": "3", "year": "2027"}
