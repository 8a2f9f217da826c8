"""Questionnaire answers: one row per respondent and questionnaire item.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "questionnaire_answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("file", sa.String(1000), nullable=False),
        sa.Column("respondent", sa.String(40), nullable=False),
        sa.Column("municipality", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("item", sa.String(40), nullable=False),
        # the incentive the item operationalises (null for open and descriptive items)
        sa.Column("code", sa.String(80)),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("score", sa.Float),
        sa.Column("imported_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("respondent", "item", name="uq_questionnaire_answer"),
    )


def downgrade() -> None:
    op.drop_table("questionnaire_answers")
