"""the agency's side: work queues, message threads, online mail, paper-mail choice, email back-off

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

What was waiting before this revision (requests not yet decided, consents
waiting for review) gets its work item, and each existing message becomes a
thread of one post, so nothing submitted earlier is missed by the queues.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("to_user_id", sa.Integer(), nullable=True),
        sa.Column("started_by_user_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_post_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("message_threads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_threads_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_threads_last_post_at"), ["last_post_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_message_threads_to_user_id"), ["to_user_id"], unique=False)

    op.create_table(
        "work_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("service_request_id", sa.Integer(), nullable=True),
        sa.Column("consent_id", sa.Integer(), nullable=True),
        sa.Column("thread_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("assignee_user_id", sa.Integer(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("service_request_id"),
    )
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_work_items_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_work_items_assignee_user_id"), ["assignee_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_work_items_consent_id"), ["consent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_work_items_queue"), ["queue"], unique=False)
        batch_op.create_index("ix_work_items_queue_status_received", ["queue", "status", "received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_work_items_received_at"), ["received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_work_items_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_work_items_thread_id"), ["thread_id"], unique=False)

    op.create_table(
        "message_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("from_agency", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("submission_key", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["message_threads.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("submission_key"),
    )
    with op.batch_alter_table("message_posts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_posts_thread_id"), ["thread_id"], unique=False)

    op.create_table(
        "mail_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("posted_on", sa.Date(), nullable=False),
        sa.Column("posted_at", sa.DateTime(), nullable=False),
        sa.Column("posted_by_user_id", sa.Integer(), nullable=True),
        sa.Column("delivery", sa.String(length=8), nullable=False),
        sa.Column("shown_online", sa.Boolean(), nullable=False),
        sa.Column("tax_return_id", sa.Integer(), nullable=True),
        sa.Column("service_request_id", sa.Integer(), nullable=True),
        sa.Column("pin_id", sa.Integer(), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("mailed_at", sa.DateTime(), nullable=True),
        sa.Column("first_read_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mail_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_items_account_id"), ["account_id"], unique=False)
        batch_op.create_index("ix_mail_items_account_posted", ["account_id", "posted_on"], unique=False)

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paper_mail_until", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("paper_mail_chosen_by_user_id", sa.Integer(), nullable=True))

    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_post_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_documents_message_post_id"), ["message_post_id"], unique=False)

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("post_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_messages_thread_id"), ["thread_id"], unique=False)
        batch_op.create_index("ix_messages_user_unread", ["user_id", "read_at"], unique=False)

    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(), nullable=True))

    _backfill()


# The queue each kind of request reaches (domain.work.QUEUE_OF_KIND at this revision).
_QUEUE_OF_KIND = {
    "return": "returns",
    "claim": "returns",
    "amended_return": "returns",
    "amended_claim": "returns",
    "objection": "objections",
    "waiver": "waivers",
    "arrangement": "arrangements",
    "direct_deposit": "direct_deposit",
    "renewal": "renewals",
    "documents": "documents",
}


def _backfill() -> None:
    bind = op.get_bind()
    requests = bind.execute(
        sa.text(
            "SELECT id, account_id, kind, summary, submitted_at FROM service_requests "
            "WHERE status IN ('received', 'in_review') ORDER BY id"
        )
    ).all()
    for row in requests:
        queue = _QUEUE_OF_KIND.get(row.kind)
        if queue is None:
            continue
        bind.execute(
            sa.text(
                "INSERT INTO work_items (queue, status, account_id, service_request_id, summary, received_at) "
                "VALUES (:queue, 'received', :account_id, :request_id, :summary, :at)"
            ),
            {
                "queue": queue,
                "account_id": row.account_id,
                "request_id": row.id,
                "summary": row.summary[:300],
                "at": row.submitted_at,
            },
        )
    consents = bind.execute(
        sa.text(
            "SELECT id, account_id, representative_name, declared_at FROM consents WHERE status = 'submitted' "
            "ORDER BY id"
        )
    ).all()
    for row in consents:
        bind.execute(
            sa.text(
                "INSERT INTO work_items (queue, status, account_id, consent_id, summary, received_at) "
                "VALUES ('consents', 'received', :account_id, :consent_id, :summary, :at)"
            ),
            {
                "account_id": row.account_id,
                "consent_id": row.id,
                "summary": f"Consent for {row.representative_name}"[:300],
                "at": row.declared_at,
            },
        )
    messages = bind.execute(
        sa.text("SELECT id, user_id, account_id, subject, body, created_at FROM messages ORDER BY id")
    ).all()
    for row in messages:
        thread_id = bind.execute(
            sa.text(
                "INSERT INTO message_threads (account_id, subject, to_user_id, started_at, last_post_at) "
                "VALUES (:account_id, :subject, :user_id, :at, :at) RETURNING id"
            ),
            {"account_id": row.account_id, "subject": row.subject, "user_id": row.user_id, "at": row.created_at},
        ).scalar_one()
        post_id = bind.execute(
            sa.text(
                "INSERT INTO message_posts (thread_id, from_agency, body, created_at) "
                "VALUES (:thread_id, :yes, :body, :at) RETURNING id"
            ),
            {"thread_id": thread_id, "yes": True, "body": row.body, "at": row.created_at},
        ).scalar_one()
        bind.execute(
            sa.text("UPDATE messages SET thread_id = :thread_id, post_id = :post_id WHERE id = :id"),
            {"thread_id": thread_id, "post_id": post_id, "id": row.id},
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_emails", schema=None) as batch_op:
        batch_op.drop_column("next_attempt_at")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_user_unread")
        batch_op.drop_index(batch_op.f("ix_messages_thread_id"))
        batch_op.drop_column("post_id")
        batch_op.drop_column("thread_id")

    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_documents_message_post_id"))
        batch_op.drop_column("message_post_id")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("paper_mail_chosen_by_user_id")
        batch_op.drop_column("paper_mail_until")

    with op.batch_alter_table("mail_items", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_items_account_posted")
        batch_op.drop_index(batch_op.f("ix_mail_items_account_id"))

    op.drop_table("mail_items")
    with op.batch_alter_table("message_posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_posts_thread_id"))

    op.drop_table("message_posts")
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_items_thread_id"))
        batch_op.drop_index(batch_op.f("ix_work_items_status"))
        batch_op.drop_index(batch_op.f("ix_work_items_received_at"))
        batch_op.drop_index("ix_work_items_queue_status_received")
        batch_op.drop_index(batch_op.f("ix_work_items_queue"))
        batch_op.drop_index(batch_op.f("ix_work_items_consent_id"))
        batch_op.drop_index(batch_op.f("ix_work_items_assignee_user_id"))
        batch_op.drop_index(batch_op.f("ix_work_items_account_id"))

    op.drop_table("work_items")
    with op.batch_alter_table("message_threads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_threads_to_user_id"))
        batch_op.drop_index(batch_op.f("ix_message_threads_last_post_at"))
        batch_op.drop_index(batch_op.f("ix_message_threads_account_id"))

    op.drop_table("message_threads")
