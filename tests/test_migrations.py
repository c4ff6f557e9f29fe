"""Migrations on a database that already holds work. 0006: what was waiting for
the agency (requests not yet decided, consents waiting for review) gets its work
item, and each earlier message becomes a thread of one post, still unread. 0008:
the audit events already recorded are filed under what they name."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from domain.db import make_engine
from migrations.runner import upgrade


def test_upgrading_to_the_back_office_keeps_everything_that_was_waiting(tmp_path):
    url = f"sqlite:///{tmp_path / 'before.db'}"
    upgrade(url, "0005")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, name, password_hash, created_at, password_changed_at) "
                "VALUES (1, 'o@example.com', 'Olive', 'x', '2026-11-01', '2026-11-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO programs (code, name, number_prefix, filing_frequency, due_rule, is_claim, "
                "functions, objection_days, description) VALUES ('TL', 'Tourism Levy', '41', 'monthly', "
                "'M+1:last', 0, 'file', 90, '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO accounts (id, number, program_code, legal_name, status, mailing_address, "
                "physical_address, opened_on, profile_version) VALUES (1, '4100000018', 'TL', 'Inn', "
                "'active', '', '', '2026-01-01', 1)"
            )
        )
        for number, (kind, status) in enumerate(
            [("objection", "received"), ("waiver", "in_review"), ("arrangement", "approved"), ("profile", "completed")],
            1,
        ):
            conn.execute(
                text(
                    "INSERT INTO service_requests (reference, account_id, kind, status, summary, data, submitted_at, "
                    "submitted_by_user_id, idempotency_key) VALUES (:ref, 1, :kind, :status, :summary, '{}', "
                    "'2026-11-02 10:00:00', 1, :key)"
                ),
                {
                    "ref": f"SR-AAAA-000{number}",
                    "kind": kind,
                    "status": status,
                    "summary": f"{kind} summary",
                    "key": f"key-{number}",
                },
            )
        conn.execute(
            text(
                "INSERT INTO consents (account_id, representative_name, representative_email, "
                "permissions, starts_on, status, declared_by_user_id, declared_at) VALUES (1, 'Riley', "
                "'r@example.com', 'view_financial', '2026-11-01', 'submitted', 1, '2026-11-03 09:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO messages (user_id, account_id, subject, body, created_at) VALUES "
                "(1, 1, 'New bank details', 'Your direct deposit changed.', '2026-11-04 08:00:00')"
            )
        )
    upgrade(url)
    with engine.begin() as conn:
        items = conn.execute(
            text("SELECT queue, status, service_request_id, consent_id, summary FROM work_items ORDER BY id")
        ).all()
        thread = conn.execute(text("SELECT id, subject, to_user_id, account_id FROM message_threads")).one()
        post = conn.execute(text("SELECT id, thread_id, from_agency, body FROM message_posts")).one()
        message = conn.execute(text("SELECT thread_id, post_id, read_at FROM messages")).one()
    engine.dispose()
    assert [(q, s, r, c) for q, s, r, c, _ in items] == [
        ("objections", "received", 1, None),
        ("waivers", "received", 2, None),
        ("consents", "received", None, 1),
    ]
    assert items[2][4] == "Consent for Riley"
    assert (thread.subject, thread.to_user_id, thread.account_id) == ("New bank details", 1, 1)
    assert (post.thread_id, bool(post.from_agency), post.body) == (thread.id, True, "Your direct deposit changed.")
    assert (message.thread_id, message.post_id, message.read_at) == (thread.id, post.id, None)


def test_upgrading_to_0008_files_the_events_already_recorded_under_what_they_name(fresh_database):
    """The audit events recorded before 0008 get their item, reference, consent and
    thread columns from their detail, and the log stays append-only afterwards."""
    upgrade(fresh_database, "0007")
    engine = make_engine(fresh_database)
    details = [
        '{"item": 7, "queue": "objections"}',
        '{"reference": "SR-AAAA-0001"}',
        '{"consent": 3, "item": 8}',
        '{"post": 2, "thread": 5}',
        '{"count": 2}',
        "not json",
        '{"item": "7", "reference": 12, "consent": true}',  # not what the columns hold
    ]
    with engine.begin() as conn:
        for number, detail in enumerate(details, 1):
            conn.execute(
                text(
                    "INSERT INTO audit_events (id, occurred_at, event, outcome, detail) "
                    "VALUES (:id, '2026-11-02 10:00:00', 'work.taken', 'success', :detail)"
                ),
                {"id": number, "detail": detail},
            )
    upgrade(fresh_database)
    with engine.begin() as conn:
        filled = conn.execute(
            text("SELECT work_item_id, request_reference, consent_id, thread_id FROM audit_events ORDER BY id")
        ).all()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET event = 'changed'"))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events"))
    engine.dispose()
    assert [tuple(row) for row in filled] == [
        (7, None, None, None),
        (None, "SR-AAAA-0001", None, None),
        (8, None, 3, None),
        (None, None, None, 5),
        (None, None, None, None),
        (None, None, None, None),
        (None, None, None, None),
    ]
