"""Initial schema: transcripts, utterances, annotations, predictions, review items, runs.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40)),
        sa.Column("segmenter", sa.String(200)),
        sa.Column("settings", sa.Text),
        sa.Column("summary", sa.Text),
    )
    op.create_table(
        "transcripts",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("source", sa.String(500), nullable=False, index=True),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("file_format", sa.String(10), nullable=False),
        sa.Column("encoding", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("municipality", sa.String(200), nullable=False),
        sa.Column("respondent", sa.String(40), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("header", sa.Text),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("superseded_by", sa.String(16)),
        sa.Column("segmenter", sa.String(200)),
        sa.Column("ingested_at", sa.String(40), nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id")),
    )
    op.create_table(
        "utterances",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("transcript_id", sa.String(16), sa.ForeignKey("transcripts.id"), nullable=False, index=True),
        sa.Column("turn", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("speaker", sa.String(20), nullable=False),
        sa.Column("start_offset", sa.Integer, nullable=False),
        sa.Column("end_offset", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("municipality", sa.String(200), nullable=False),
        sa.Column("respondent", sa.String(40), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
    )
    op.create_table(
        "annotations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("utterance_id", sa.String(80), sa.ForeignKey("utterances.id"), nullable=False, index=True),
        sa.Column("code", sa.String(80), nullable=False),
        sa.Column("direction", sa.String(1), nullable=False),
        sa.Column("facet", sa.String(20)),
        sa.Column("annotator", sa.String(120), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("codebook_version", sa.String(40), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("utterance_id", "code", "annotator", "origin", name="uq_annotation"),
    )
    op.create_table(
        "predictions",
        sa.Column("utterance_id", sa.String(80), sa.ForeignKey("utterances.id"), primary_key=True),
        sa.Column("model_id", sa.String(80), primary_key=True),
        sa.Column("code", sa.String(80), primary_key=True),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("predicted", sa.Boolean, nullable=False),
        sa.Column("direction", sa.String(1)),
        sa.Column("direction_p", sa.Float),
        sa.Column("facet", sa.String(20)),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "review_items",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("utterance_id", sa.String(80), sa.ForeignKey("utterances.id"), nullable=False, index=True),
        sa.Column("model_id", sa.String(80), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("priority", sa.Float, nullable=False),
        sa.Column("reasons", sa.Text),
        sa.Column("claimed_by", sa.String(120)),
        sa.Column("claimed_until", sa.String(40)),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("decided_by", sa.String(120)),
        sa.Column("decided_at", sa.String(40)),
    )


def downgrade() -> None:
    for table in ("review_items", "predictions", "annotations", "utterances", "transcripts", "runs"):
        op.drop_table(table)
