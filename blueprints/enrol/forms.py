from flask_wtf import FlaskForm
from wtforms import StringField, ValidationError
from wtforms.validators import DataRequired, Length

from domain.accounts import number_problem
from domain.enrolment_requests import ROLE_LABELS
from web.forms import add_error, email_field, not_blank, one_line, radio_field, text_field


def _valid_number(_form, field):
    # Caught here, before any look-up: a mistyped number never reaches the database.
    problem = number_problem(field.data or "")
    if problem:
        raise ValidationError(problem)


class EnrolForm(FlaskForm):
    number = StringField(
        "Account number", id="number", description="10 digits, from your invitation letter", validators=[_valid_number]
    )
    # "pin_code" is one of the fields a form kept across a time-out never keeps (web.access).
    pin_code = StringField(
        "PIN",
        id="pin",
        description="From your invitation letter",
        validators=[
            DataRequired("Enter the PIN from your invitation letter"),
            Length(max=40, message="Enter the PIN exactly as it is on your invitation letter"),
        ],
    )


class AskForm(FlaskForm):
    """Ask for an invitation letter: the account (by number, or by the business's
    details) and who is asking. Which account answers is the officer's to find."""

    account_number = text_field(
        "Account number (if you know it)",
        "account_number",
        "10 digits, from a notice or a return. Leave it empty if you do not know it",
        Length(max=20, message="Enter the account number's 10 digits"),
    )
    legal_name = text_field(
        "Business's legal name",
        "legal_name",
        "As registered, for example Prairie Farms Ltd.",
        Length(max=200, message="Enter a name of 200 characters or fewer"),
        one_line("Enter the name on one line"),
    )
    business_number = text_field(
        "Business or registration number",
        "business_number",
        "For example the corporate access number or the CRA business number",
        Length(max=40, message="Enter a number of 40 characters or fewer"),
        one_line("Enter the number on one line"),
    )
    business_address = text_field(
        "Business address",
        "business_address",
        "Where the business is, to help us find it. The letter goes only to the address we have on file",
        Length(max=500, message="Enter an address of 500 characters or fewer"),
        area=True,
    )
    name = text_field(
        "Your full name",
        "name",
        "",
        not_blank("Enter your full name"),
        Length(max=200, message="Enter a name of 200 characters or fewer"),
        one_line("Enter your name on one line"),
    )
    email = email_field(hint="We will email you to say we have your request")
    phone = text_field(
        "Your phone number",
        "phone",
        "In case we need to ask about the request",
        not_blank("Enter your phone number"),
        Length(max=40, message="Enter a phone number of 40 characters or fewer"),
        one_line("Enter the phone number on one line"),
    )
    role = radio_field("Your role in the business", "role", ROLE_LABELS)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.role.data not in ROLE_LABELS:
            add_error(self.role, "Choose your role in the business")
            valid = False
        if self.account_number.data:
            problem = number_problem(self.account_number.data)
            if problem:
                add_error(self.account_number, problem)
                valid = False
        elif not self.legal_name.data:
            add_error(self.legal_name, "Enter the account number, or the business's legal name")
            valid = False
        elif not (self.business_number.data or self.business_address.data):
            add_error(self.business_number, "Enter the business's registration number or its address")
            valid = False
        return valid
