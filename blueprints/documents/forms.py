"""The supporting documents upload form. The files themselves are checked by
domain.documents (their type from their content, their size from the setting)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import Length


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class UploadForm(FlaskForm):
    # Declaration order is the page's order, and the error summary's.
    files = MultipleFileField("Files to upload", id="files")
    description = StringField(
        "Description (optional)",
        id="description",
        filters=[_strip],
        description="For example, receipts for June 2026, or the letter from our auditor",
        validators=[Length(max=200, message="Enter a description of 200 characters or fewer")],
    )
    about = SelectField(
        "What is it about? (optional)",
        id="about",
        choices=[],
        validate_choice=False,
        description="The return, objection or waiver request these documents support",
    )
    token = HiddenField()
    draft = HiddenField()
    next = HiddenField()

    def validate_about(self, field):
        from wtforms import ValidationError

        if field.data and field.data not in {value for value, _label in field.choices}:
            raise ValidationError("Choose a request from the list, or Nothing in particular")
