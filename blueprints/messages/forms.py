"""The reply form, and the form a taxpayer writes to the agency with. Attached
files are checked by domain.documents (their type from their content, their
size from the setting)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import MultipleFileField
from wtforms import HiddenField, RadioField, StringField, TextAreaField, ValidationError
from wtforms.validators import DataRequired, InputRequired, Length

from domain.messages import MAX_BODY, MAX_SUBJECT, TOPICS, normalise_body
from web.forms import SelectChoice

CHOOSE_TOPIC = "Choose what your message is about"


def _one_line(value):
    return " ".join(value.split()) if isinstance(value, str) else value


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


class WriteForm(FlaskForm):
    """A new message to the agency. Declaration order is the page's order, and the error summary's."""

    topic = RadioField(
        "What is your message about?",
        id="topic",
        choices=[SelectChoice(value, label) for value, label in TOPICS.items()],
        validators=[InputRequired(CHOOSE_TOPIC)],
        validate_choice=False,
    )
    subject = StringField(
        "Subject",
        id="subject",
        filters=[_one_line],
        description="A few words we can file it under, for example the period or the notice it is about.",
        validators=[
            DataRequired("Enter a subject"),
            Length(max=MAX_SUBJECT, message=f"Enter a subject of {MAX_SUBJECT} characters or fewer"),
        ],
    )
    body = TextAreaField(
        "Your message",
        id="body",
        filters=[normalise_body],
        description=f"Up to {MAX_BODY:,} characters. Never include your password or PIN: we will never ask for them.",
        validators=[
            DataRequired("Enter your message"),
            Length(max=MAX_BODY, message=f"Enter a message of {MAX_BODY:,} characters or fewer"),
        ],
    )
    files = MultipleFileField("Attach files (optional)", id="files")
    token = HiddenField()

    def validate_topic(self, field):
        if field.data not in TOPICS:
            raise ValidationError(CHOOSE_TOPIC)
