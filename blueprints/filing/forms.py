"""Forms for filing: one figures form per program, made from its data in
domain.filing (fields in the order the program lists them), and the check form
with its declaration."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms.validators import StopValidation

from domain import filing
from web.forms import SendForm, declaration_field, text_field


class _Figure:
    """Reads the typed text with domain.filing.parse_figure; keeps the value on the field."""

    def __init__(self, figure: filing.Figure):
        self.figure = figure

    def __call__(self, _form, field):
        value, message = filing.parse_figure(self.figure, field.data)
        field.value = value
        if message:
            raise StopValidation(message)


_CLASSES: dict[str, type] = {}


def figures_form(spec: filing.ProgramForm) -> type:
    """The FlaskForm class of a program's figures (made once)."""
    made = _CLASSES.get(spec.program_code)
    if made is None:
        fields = {f.key: text_field(f.label, f.key, f.hint, _Figure(f)) for f in spec.figures}
        made = _CLASSES[spec.program_code] = type(f"{spec.program_code}FiguresForm", (FlaskForm,), fields)
    return made


def values_of(form, spec: filing.ProgramForm) -> dict:
    """The figures read by a validated form (key -> Decimal)."""
    return {f.key: getattr(form[f.key], "value", None) for f in spec.figures}


class CheckForm(SendForm):
    declaration = declaration_field(
        "I certify the information given is correct and complete",
        "Confirm that the information given is correct and complete",
    )
