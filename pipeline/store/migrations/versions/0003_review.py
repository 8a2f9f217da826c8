"""Review queue: annotators, the audit trail of decisions, uncertainty and impact per item.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
# "0002" (questionnaires) is written on another branch; until it is merged this revision
# follows "0001". Whoever merges both sets this to "0002".
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(120), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(40), sa.ForeignKey("review_items.id"), nullable=False, index=True),
        sa.Column("utterance_id", sa.String(80), nullable=False, index=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("user_name", sa.String(120), nullable=False, index=True),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("codings", sa.Text),
        sa.Column("previous", sa.Text),
        sa.Column("status_before", sa.String(20), nullable=False),
        sa.Column("status_after", sa.String(20), nullable=False),
        sa.Column("version_after", sa.Integer, nullable=False),
        sa.Column("undone", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("codebook_version", sa.String(40)),
        sa.Column("note", sa.Text),
    )
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("uncertainty", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("impact", sa.Float, nullable=False, server_default="1"))
    op.create_index("ix_review_items_status_priority", "review_items", ["status", "priority"])


def downgrade() -> None:
    op.drop_index("ix_review_items_status_priority", table_name="review_items")
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("impact")
        batch.drop_column("uncertainty")
    op.drop_table("review_decisions")
    op.drop_table("users")
