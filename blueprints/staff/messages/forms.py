"""Staff messages: writing to an account or a person, and replying in a thread."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from domain.messages import MAX_BODY, MAX_SUBJECT, normalise_body


def _strip(value):
    return " ".join(value.split()) if isinstance(value, str) else value


def _body(label: str, required: str) -> TextAreaField:
    return TextAreaField(
        label,
        id="body",
        filters=[normalise_body],
        description=(
            f"Up to {MAX_BODY:,} characters. It is read in the portal; the email only says a message is waiting. "
            "Never ask for a password or PIN."
        ),
        validators=[
            DataRequired(required),
            Length(max=MAX_BODY, message=f"Enter a message of {MAX_BODY:,} characters or fewer"),
        ],
    )


class AddresseeForm(FlaskForm):
    """Who to write to, when the page was opened without saying (a GET: changes nothing)."""

    class Meta:
        csrf = False

    account = StringField(
        "Account number",
        id="account",
        filters=[_strip],
        description="Everyone on the account who receives messages gets it; on the next page "
        "you can choose one person on the account instead.",
        validators=[
            DataRequired("Enter an account number"),
            Length(max=20, message="Enter an account number of 10 digits"),
        ],
    )


class NewMessageForm(FlaskForm):
    # Declaration order is the page's order, and the error summary's.
    subject = StringField(
        "Subject",
        id="subject",
        filters=[_strip],
        validators=[
            DataRequired("Enter a subject"),
            Length(max=MAX_SUBJECT, message=f"Enter a subject of {MAX_SUBJECT} characters or fewer"),
        ],
    )
    body = _body("Message", "Enter the message")
    files = MultipleFileField("Attach files (optional)", id="files")
    token = HiddenField()


class StaffReplyForm(FlaskForm):
    body = _body("Reply", "Enter the reply")
    files = MultipleFileField("Attach files (optional)", id="files")
    token = HiddenField()
