"""Server-side review sessions, persisted login failures, and the process of each run (issue 20).

``review_sessions`` holds one row per login (the SHA-256 of the session token, never the token),
so logging out or changing a password ends a session for every copy of its cookie.
``login_failures`` counts failed logins per (user name, client address) and survives restarts.
``runs`` gains the host and pid of the process that runs it, so a killed run can be told from a
running one, and the ratings a finished run wrote, so the next run compares with those.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(120), nullable=False, index=True),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_table(
        "login_failures",
        sa.Column("user_name", sa.String(120), primary_key=True),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("n_failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.Float, nullable=False, index=True),
        sa.Column("locked_until", sa.Float, nullable=False),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("host", sa.String(255)))
        batch.add_column(sa.Column("pid", sa.Integer))
        batch.add_column(sa.Column("ratings", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("ratings")
        batch.drop_column("pid")
        batch.drop_column("host")
    op.drop_table("login_failures")
    op.drop_table("review_sessions")
