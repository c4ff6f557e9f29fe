"""The audit viewer's filter: a GET form (no CSRF token: it changes nothing)."""

from __future__ import annotations

import re
from datetime import date

from flask_wtf import FlaskForm
from wtforms import StringField

from domain import audit_log, words
from domain.accounts import normalise_number, number_problem
from web.forms import DateInputField, add_error, date_rule

_EVENT = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*\.?$")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _within_reach(day: date) -> bool:
    # Far-off years name no event and would overflow the day after.
    return 1900 <= day.year <= 2999


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    person = StringField(
        "Person",
        id="audit-person",
        filters=[_strip],
        description="Their email address (exactly), or their user number. Finds what they did "
        "and what was done to them",
    )
    account = StringField("Account number", id="audit-account", filters=[_strip])
    action = StringField(
        "Action",
        id="audit-action",
        filters=[_strip],
        description="An event in words, like Consent approved, or the first word of its code "
        "ending in a dot, like consent. for every consent event",
    )
    date_from = DateInputField(
        "From",
        [date_rule("The first day must be a real date", _within_reach)],
        name="from",
        id="audit-from",
        what="The first day",
        description="On or after this day (Mountain time), for example 1 11 2026",
    )
    date_to = DateInputField(
        "To",
        [date_rule("The last day must be a real date", _within_reach)],
        name="to",
        id="audit-to",
        what="The last day",
        description="On or before this day (Mountain time)",
    )

    def params(self) -> dict[str, str]:
        """The query string of the filter as typed, only what is filled in: for links and the CSV."""
        return {
            field.name: field.data.isoformat() if isinstance(field.data, date) else field.data
            for field in self
            if field.data
        }

    def to_filter(self, db, zone: str) -> audit_log.AuditFilter | None:
        """The filter, or None with a message beside each field that is wrong."""
        self.validate()
        person_id = account_id = None
        if self.person.data:
            text = self.person.data
            if text.isascii() and text.isdigit():  # not "²", which isdigit() allows and int() refuses
                person_id = int(text) if len(text) <= 10 else 0
                if not audit_log.person_exists(db, person_id):
                    add_error(self.person, "No one has that user number")
            elif "@" in text and len(text) <= 254:
                person_id = audit_log.person_by_email(db, text)
                if person_id is None:
                    add_error(self.person, "No one has that email address. Enter it exactly as they registered it")
            else:
                add_error(self.person, "Enter an email address, like name@example.com, or a user number")
        if self.account.data:
            problem = number_problem(self.account.data)
            if problem:
                add_error(self.account, problem.replace("your account number", "an account number"))
            else:
                account_id = audit_log.account_by_number(db, normalise_number(self.account.data))
                if account_id is None:
                    add_error(self.account, "No account has that number")
        action = words.event_code(self.action.data or "").lower() or None
        if action and (len(action) > audit_log.EVENT_MAX or not _EVENT.match(action)):
            add_error(
                self.action, "Enter an event in words, like Consent approved, or the start of its code, like consent."
            )
        first, last = self.date_from.data, self.date_to.data
        if first and last and first > last:
            self.date_from.show_problem("The first day must be on or before the last day")
        if self.errors:
            return None
        start, end = audit_log.day_range(first, last, zone)
        return audit_log.AuditFilter(person_id=person_id, account_id=account_id, action=action, start=start, end=end)
