"""Review: the queue of predictions a human should look at (:mod:`.priority` orders it,
:mod:`.queue` hands items out and records decisions), the annotators (:mod:`.users`), and the
ways to review: the web page (:mod:`pipeline.review.web`), the terminal and Label Studio.
"""

from pipeline.review.evidence import (
    Fragment,
    MarginCode,
    TranscriptLine,
    TranscriptView,
    code_fragments,
    transcript_view,
)
from pipeline.review.labelstudio import export_label_studio, import_label_studio
from pipeline.review.plan import PlannedBatch, QueuePlan, batch_effect, diverse_batches, plan_review_queue, review_budget
from pipeline.review.priority import Reason, Uncertainty, assess_uncertainty, evidence_impact, text_shingles
from pipeline.review.queue import (
    Progress,
    ReviewContext,
    ReviewFilter,
    accept,
    claim_next,
    claim_one,
    code_fragment,
    correct,
    enqueue,
    export_review_csv,
    get_item,
    item_context,
    progress,
    review_annotations,
    review_item_id,
    skip,
    suggested_codings,
    undo_last,
)
from pipeline.review.terminal import run_terminal_review
from pipeline.review.users import add_user, authenticate, list_users, set_password
from pipeline.review.wording import progress_text, reason_text, reasons_text

__all__ = [
    "Fragment", "MarginCode", "PlannedBatch", "Progress", "QueuePlan", "Reason", "ReviewContext", "ReviewFilter",
    "TranscriptLine", "TranscriptView", "Uncertainty", "accept", "add_user", "assess_uncertainty", "batch_effect",
    "code_fragment", "code_fragments", "diverse_batches", "plan_review_queue", "progress_text", "reason_text",
    "reasons_text", "review_budget", "transcript_view",
    "authenticate", "claim_next", "claim_one", "correct", "enqueue", "evidence_impact", "export_label_studio",
    "export_review_csv", "get_item", "import_label_studio", "item_context", "list_users", "progress",
    "review_annotations", "review_item_id", "run_terminal_review", "set_password", "skip", "suggested_codings",
    "text_shingles", "undo_last",
]
