"""Review queue sized for people (issue 18): each open item's batch in tonight's queue and its
expected effect on the ratings in plain words; open items of superseded transcripts retired.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
# written beside other branches' 0005/0006; whoever merges re-chains this revision
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLE (no batch copy of the table): SQLite adds and, from 3.35, drops columns in
    # place, and a table copy would trip over the review_decisions foreign key
    op.add_column("review_items", sa.Column("batch", sa.Integer, nullable=True))
    op.add_column("review_items", sa.Column("effect", sa.Text, nullable=True))
    # Items of transcripts superseded before this revision stayed claimable (issue 18): retire
    # them now, as superseding does from here on.
    op.execute(sa.text(
        "UPDATE review_items SET status = 'retired', version = version + 1, claimed_by = NULL, "
        "claimed_until = NULL, decided_by = 'codeer', decided_at = CURRENT_TIMESTAMP "
        "WHERE status IN ('pending', 'claimed') AND utterance_id IN ("
        "SELECT u.id FROM utterances u JOIN transcripts t ON t.id = u.transcript_id WHERE t.status = 'superseded')"))


def downgrade() -> None:
    op.execute(sa.text("UPDATE review_items SET status = 'pending' WHERE status = 'waiting'"))
    op.drop_column("review_items", "effect")
    op.drop_column("review_items", "batch")
