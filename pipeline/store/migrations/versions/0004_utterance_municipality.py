"""Index utterances by municipality: the review queue's evidence counts and rating look up
the utterances of a few municipalities at a time (issue 8).

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_utterances_municipality", "utterances", ["municipality"])


def downgrade() -> None:
    op.drop_index("ix_utterances_municipality", table_name="utterances")
