from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from domain.decisions import MAX_REASON
from web.forms import SelectChoice

STATUS_CHOICES = (
    SelectChoice("open", "Waiting (received or in progress)"),
    SelectChoice("received", "Received"),
    SelectChoice("in_progress", "In progress"),
    SelectChoice("decided", "Decided"),
)
STATUS_FILTERS = {
    "open": ("received", "in_progress"),
    "received": ("received",),
    "in_progress": ("in_progress",),
    "decided": ("decided",),
}
ASSIGNEE_CHOICES = (
    SelectChoice("everyone", "Everyone"),
    SelectChoice("mine", "Assigned to me"),
    SelectChoice("unassigned", "Unassigned"),
)


class QueueFilterForm(FlaskForm):
    """A GET filter: bookmarkable, and nothing to protect (it changes nothing)."""

    class Meta:
        csrf = False

    status = SelectField("Status", choices=STATUS_CHOICES, default="open", validate_choice=False)
    assignee = SelectField("Assigned to", choices=ASSIGNEE_CHOICES, default="everyone", validate_choice=False)

    def check(self) -> bool:
        """Whether the filter can be applied; a choice left out of the address is the default."""
        for field, choices, message in (
            (self.status, STATUS_CHOICES, "Choose a status from the list"),
            (self.assignee, ASSIGNEE_CHOICES, "Choose whose items to show from the list"),
        ):
            if not field.raw_data:
                field.data = field.default
            elif field.data not in {choice.value for choice in choices}:
                field.errors = [message]
        return not any(field.errors for field in (self.status, self.assignee))

    @property
    def statuses(self) -> tuple[str, ...]:
        return STATUS_FILTERS[self.status.data]


class DecisionForm(FlaskForm):
    decision = RadioField("Decision", choices=[], validate_choice=False, validators=[DataRequired("Choose a decision")])
    reason = TextAreaField(
        "Reason, or a note",
        description="Needed to decline or close. The account's people read it with the decision, so write it for them.",
        validators=[Length(max=MAX_REASON, message=f"The reason must be {MAX_REASON:,} characters or fewer")],
    )


class AssignForm(FlaskForm):
    assignee = SelectField(
        "Assign to", choices=[], validate_choice=False, validators=[DataRequired("Choose a staff member")]
    )


class LetterForm(FlaskForm):
    """Answer a request for an invitation letter: the account the officer found,
    and the form's one-time key (domain.once), so a double click posts one letter."""

    number = StringField(
        "Account number",
        id="number",
        description="The account the request is about, found from its details (10 digits)",
        validators=[DataRequired("Enter the account number of the account you found"), Length(max=20)],
    )
    key = HiddenField()
