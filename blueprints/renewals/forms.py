"""Forms for renewing a licence: the confirmation with the program's questions
(made from domain.renewals.QUESTIONS), and the declaration."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField

from domain import renewals
from web.forms import SelectChoice, SendForm, add_error, declaration_field, radio_field, text_field


class _ConfirmBase(FlaskForm):
    # Made before the program's questions: WTForms orders fields (and so the error summary) by when they were made.
    details_correct = radio_field("Are these details correct?", "details_correct", dict(renewals.YES_NO))
    program_code = ""

    def answers(self) -> dict:
        """The posted answers as the draft keeps them (text, or a list of text)."""
        found: dict[str, str | list[str]] = {
            renewals.CONFIRMED: self.details_correct.data if isinstance(self.details_correct.data, str) else ""
        }
        for question in renewals.questions(self.program_code):
            value = getattr(self, question.name).data
            if question.kind == "choices":
                found[question.name] = [v[:40] for v in (value or []) if isinstance(v, str)][:20]
            else:
                found[question.name] = value[:200] if isinstance(value, str) else ""
        return found

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        answers = self.answers()
        problem = renewals.confirmation_problem(answers)
        if problem:
            add_error(self.details_correct, problem)
        found = {} if answers.get(renewals.CONFIRMED) == "no" else renewals.problems(self.program_code, answers)
        for name, message in found.items():
            add_error(getattr(self, name), message)
        return valid and not problem and not found


_FORMS: dict[str, type] = {}


def confirm_form(program_code: str) -> type:
    """The confirmation form of a program, its questions in the order the data gives them."""
    if program_code not in _FORMS:
        fields: dict[str, object] = {"program_code": program_code}
        for question in renewals.questions(program_code):
            choices = [SelectChoice(key, label) for key, label in question.options]
            if question.kind == "choices":
                fields[question.name] = SelectMultipleField(
                    question.label, id=question.name, choices=choices, validate_choice=False, description=question.hint
                )
            elif question.kind == "yes_no":
                fields[question.name] = radio_field(
                    question.label, question.name, dict(question.options), question.hint
                )
            else:
                fields[question.name] = text_field(question.label, question.name, question.hint)
        _FORMS[program_code] = type(f"RenewalForm{program_code}", (_ConfirmBase,), fields)
    return _FORMS[program_code]


class DeclarationForm(SendForm):
    declaration = declaration_field(
        "I declare that the information I have given is correct and complete, and I ask for this licence to be renewed",
        "Confirm the declaration to send the renewal",
    )
