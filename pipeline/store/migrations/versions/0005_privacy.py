"""Privacy (issue 19): the respondent code registry, ratings marked for recomputation after an
erasure, and the end of name-derived pseudonyms.

``respondent_codes`` holds one row per respondent: the HMAC of the name under the workspace key
(never the name) and the code issued for it. ``stale_ratings`` lists the municipalities whose
ratings rested on erased data, until the next ``codeer rate``.

Workspaces made before this revision hold transcript text that was not de-identified (the
header's name included) and may hold respondent codes derived from names (``X`` + four hex
digits of a SHA-1 of the name, which a list of names reverses). A migration cannot de-identify
text it has no names for, so it warns, naming the counts and what to do: erase those transcripts
(``codeer forget --transcript ID``) and ingest the files again (README, "Privacy").

Revision ID: 0005
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

logger = logging.getLogger("pipeline.store.migrations")


def upgrade() -> None:
    op.create_table(
        "respondent_codes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("code", sa.String(20), unique=True),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "stale_ratings",
        sa.Column("municipality", sa.String(200), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("marked_at", sa.String(40), nullable=False),
    )
    bind = op.get_bind()
    n_transcripts = bind.execute(sa.text("SELECT COUNT(*) FROM transcripts")).scalar_one()
    n_legacy = bind.execute(sa.text(
        "SELECT COUNT(DISTINCT respondent) FROM transcripts WHERE respondent LIKE 'X____'")).scalar_one()
    if n_transcripts:
        logger.warning(
            "this workspace holds %d transcript version(s) stored before de-identification (they may hold names) "
            "and %d respondent code(s) derived from names (X + 4 hex digits). Erase them with "
            "'codeer forget --transcript ID' ('codeer transcripts' lists them) and ingest the files again.",
            n_transcripts, n_legacy)


def downgrade() -> None:
    op.drop_table("stale_ratings")
    op.drop_table("respondent_codes")
