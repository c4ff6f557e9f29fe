"""The audit log viewer: filter by person, account, action and days; newest first,
a hundred a page; the same filter as CSV. For supervisors and administrators
(an officer gets a 403, itself audited), and every export is on the record."""

from __future__ import annotations

import csv
import io
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request, stream_with_context, url_for
from flask_login import current_user

from domain import audit, audit_log, words
from web.access import require_staff_role
from web.database import get_db, now
from web.htmx import render, wants_fragment

from .forms import AuditFilterForm

bp = Blueprint("audit", __name__, url_prefix="/audit")
ROLE = "supervisor"


def _form_and_filter():
    require_staff_role(ROLE)
    form = AuditFilterForm(request.args)
    return form, form.to_filter(get_db(), current_app.config["SERVICE_TIMEZONE"])


def _invalid(form) -> Response:
    """The form again with a message beside each wrong field, 400. Over htmx the
    form itself is swapped (and the stale results emptied), not the results."""
    response = render(
        "staff/audit/index.html", "staff/audit/_invalid.html", 400, form=form, rows=None, staff_section="audit"
    )
    if wants_fragment():
        response.headers["HX-Retarget"] = "#audit-filter"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


@bp.route("/")
def index():
    form, flt = _form_and_filter()
    if flt is None:
        return _invalid(form)
    before = audit_log.parse_before(request.args.get("before"))
    rows, next_before = audit_log.page(get_db(), flt, before)
    params = form.params()
    return render(
        "staff/audit/index.html",
        "staff/audit/_results.html",
        form=form,
        rows=rows,
        first_page=before is None,
        filtered=bool(params),
        next_url=url_for(".index", **params, before=next_before) if next_before else None,
        first_url=url_for(".index", **params),
        csv_url=url_for(".export", **params),
        staff_section="audit",
    )


CSV_HEADER = (
    "Event number",
    "When",
    "Event",
    "Event code",
    "Outcome",
    "Actor user number",
    "Actor name",
    "Actor email",
    "Subject user number",
    "Subject name",
    "Subject email",
    "Account number",
    "Detail",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    """Text a spreadsheet must not run as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


def _csv_values(row, zone: ZoneInfo) -> tuple:
    """One event as its CSV line's cells, in CSV_HEADER's order: in words, with its code."""
    return (
        row.id,
        row.occurred_at.astimezone(zone).isoformat(timespec="seconds"),
        words.event_words(row.event),
        row.event,  # for a spreadsheet's filter or a script
        words.outcome_words(row.outcome),
        row.actor_user_id,
        row.actor_name,
        row.actor_email,
        row.subject_user_id,
        row.subject_name,
        row.subject_email,
        row.account_number,
        audit_log.detail_text(row.detail),
    )


@bp.route("/export.csv")
def export():
    form, flt = _form_and_filter()
    if flt is None:
        return _invalid(form)
    db, zone = get_db(), ZoneInfo(current_app.config["SERVICE_TIMEZONE"])
    # On the record before the first row leaves: which filter, never an email. The
    # account goes in the detail, not account_id: the export is not an event of
    # the account's own history, which its managers see.
    audit.record(
        db,
        now(),
        "audit.exported",
        actor_user_id=current_user.id,
        account=flt.account_id,
        person=flt.person_id,
        action=flt.action,
        start=flt.start.isoformat() if flt.start else None,
        end=flt.end.isoformat() if flt.end else None,
    )
    db.commit()

    def lines():
        try:
            yield "\ufeff" + _csv_line(CSV_HEADER)  # the BOM: spreadsheets then read UTF-8 as UTF-8
            chunk = []
            for row in audit_log.stream(db, flt):
                chunk.append(_csv_line(_csv_values(row, zone)))
                if len(chunk) >= 200:
                    yield "".join(chunk)
                    chunk = []
            if chunk:
                yield "".join(chunk)
        finally:
            # End the read (and its server-side cursor) as soon as the rows are
            # out, even if the client goes away half way.
            db.rollback()

    stamp = now().astimezone(zone).strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )
