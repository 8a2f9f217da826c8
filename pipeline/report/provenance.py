"""What a report was made from: model, codebook, rules and counts of the data (:class:`Provenance`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Provenance:
    """What a report was made from, as the caller knows it."""

    model_id: str
    codebook_version: str
    rules_version: str
    n_transcripts: int = 0
    n_documents: int = 0
    n_utterances: int = 0
    n_human: int = 0
    n_predicted: int = 0
    created_at: str = ""
    notes: str = ""
    model_selection: str = ""  # why this model codes: the promotion decision on its card (issue 18)


def provenance_from_codings(codings: pd.DataFrame, *, model_id: str, codebook_version: str, rules_version: str,
                            created_at: str = "", notes: str = "") -> Provenance:
    """Count transcripts, documents, utterances and human/predicted codings in a codings table.

    Parameters
    ----------
    codings : pandas.DataFrame
        The table given to :func:`pipeline.rating.verdicts.rate_incentives`.
    model_id, codebook_version, rules_version : str
        As known to the caller (``model_id`` may say "human annotations only").
    created_at, notes : str, optional

    Returns
    -------
    Provenance
    """
    documents = codings["role"] == "document"
    return Provenance(
        model_id=model_id, codebook_version=codebook_version, rules_version=rules_version,
        n_transcripts=int(codings.loc[~documents, "transcript_id"].nunique()),
        n_documents=int(codings.loc[documents, "transcript_id"].nunique()),
        n_utterances=int(codings["utterance_id"].nunique()),
        n_human=int((codings["source"] == "human").sum()), n_predicted=int((codings["source"] == "predicted").sum()),
        created_at=created_at, notes=notes,
    )


# ---------------------------------------------------------------------------------- shared pieces


def model_selection_line(card: Mapping[str, Any] | None) -> str:
    """One line on why the model codes: its promotion decision and held-out scores, from its
    card (``promotion``, ``heldout``); empty for a card without them.

    Examples
    --------
    >>> model_selection_line({"promotion": {"promoted": True, "reason": "promoted over m1: ..."}})
    'promoted over m1: ...'
    """
    if not card:
        return ""
    promotion = card.get("promotion")
    if promotion:
        return str(promotion.get("reason", ""))
    heldout = card.get("heldout")
    if heldout:
        return f"{heldout.get('primary_name', 'held-out score')} {heldout.get('primary')}"
    return ""
