"""The reply form. Attached files are checked by domain.documents (their type
from their content, their size from the setting)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length

from domain.messages import MAX_BODY, normalise_body


class ReplyForm(FlaskForm):
    body = TextAreaField(
        "Your reply",
        id="body",
        filters=[normalise_body],
        description=f"Up to {MAX_BODY:,} characters. Never include your password or PIN: we will never ask for them.",
        validators=[
            DataRequired("Enter your reply"),
            Length(max=MAX_BODY, message=f"Enter a reply of {MAX_BODY:,} characters or fewer"),
        ],
    )
    files = MultipleFileField("Attach files (optional)", id="files")
    token = HiddenField()
