"""Questionnaire evidence: the answers as the evidence frame the ratings consume, and the thesis's
counts ("7/8 BM")."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.errors import ConfigError

logger = logging.getLogger(__name__)
from pipeline.corpus import (
    EVIDENCE_COLUMNS,
    ROLE_ABBREVIATIONS,
    SUMMARY_COUNTS,
    QuestionnaireDefinitions,
    combine_scores,
)
from pipeline.records import QuestionnaireResponses

if TYPE_CHECKING:
    from pipeline.store import Store


# evidence ---------------------------------------------------------------------------
def questionnaire_evidence(
    responses: QuestionnaireResponses | Iterable[QuestionnaireResponses],
    definitions: QuestionnaireDefinitions | None = None,
) -> pd.DataFrame:
    """The evidence frame of questionnaire answers, one row per scored answer.

    Parameters
    ----------
    responses : QuestionnaireResponses or an iterable of them
        E.g. the policy-officer and the manager file of a study.
    definitions : QuestionnaireDefinitions, optional
        Score with these definitions (e.g. after changing a score); default: the scores
        given when the file was read.

    Returns
    -------
    pandas.DataFrame
        Columns ``municipality, code, role, respondent, item, answer, score`` (score a float
        in [-1, 1]: 1 the incentive present, -1 absent, 0 neutral or mixed), sorted by
        municipality, code, role, respondent and item. Unanswered, open and descriptive
        (unscored) items have no row. This is the frame the ratings stage consumes.
    """
    batches = [responses] if isinstance(responses, QuestionnaireResponses) else list(responses)
    rows = []
    for batch in batches:
        version = definitions.version(batch.version) if definitions is not None else None
        for response in batch.responses:
            for answer in response.answers:
                code, score = answer.code, answer.score
                if definitions is not None and version is not None:
                    item = version.item(answer.item_id)
                    options = [item.option(text) for text in answer.options]
                    if any(option is None for option in options):
                        raise ConfigError(f"{definitions.path}: item {item.item_id} no longer has the option(s) "
                                          f"{', '.join(repr(t) for t in answer.options)} that {batch.path} used. "
                                          "Read the file again or restore the option.")
                    code, score = item.code, combine_scores(o for o in options if o is not None)
                if code is None or score is None:
                    continue
                rows.append({"municipality": response.municipality, "code": code, "role": batch.role.value,
                             "respondent": response.respondent, "item": answer.item_id, "answer": answer.answer,
                             "score": float(score)})
    frame = pd.DataFrame(rows, columns=list(EVIDENCE_COLUMNS))
    frame["score"] = frame["score"].astype(float)
    return frame.sort_values(["municipality", "code", "role", "respondent", "item"], kind="stable").reset_index(drop=True)


def stored_questionnaire_evidence(store: Store) -> pd.DataFrame:
    """The evidence frame (as :func:`questionnaire_evidence`) of all answers in the store."""
    frame = store.questionnaire_frame()
    frame = frame[frame["code"].notna() & frame["score"].notna()]
    return (frame[list(EVIDENCE_COLUMNS)]
            .sort_values(["municipality", "code", "role", "respondent", "item"], kind="stable").reset_index(drop=True))


def summarise(
    evidence: pd.DataFrame,
    by: Sequence[str] = ("item", "role"),
    definitions: QuestionnaireDefinitions | None = None,
) -> pd.DataFrame:
    """Count positive, neutral and negative answers the way the thesis cites them.

    Parameters
    ----------
    evidence : pandas.DataFrame
        A frame from :func:`questionnaire_evidence`.
    by : sequence of str
        Columns of ``evidence`` to group by; default per item and role.
    definitions : QuestionnaireDefinitions, optional
        When given and grouping by item, adds the printed ``question``.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns (plus ``code`` when grouping by item), ``n_positive`` (score > 0),
        ``n_neutral``, ``n_negative``, ``n_answered`` and ``label``: ``"7/8 BM"`` is 7
        positive answers out of 8 from policy officers (``M``: managers).

    Examples
    --------
    >>> summary = summarise(questionnaire_evidence(read_questionnaire("data/demo/questionnaires/managers.csv")))
    >>> summary.set_index("item").loc["m15", "label"]
    '8/8 M'
    """
    by = list(by)
    extra = ["code"] if "item" in by and "code" not in by else []
    columns = by + extra + list(SUMMARY_COUNTS) + ["label"]
    if evidence.empty:
        return pd.DataFrame(columns=columns)
    scores = evidence["score"].astype(float)
    counts = evidence.assign(n_positive=(scores > 0).astype(int), n_neutral=(scores == 0).astype(int),
                             n_negative=(scores < 0).astype(int), n_answered=1)
    aggregations: dict[str, Any] = {name: "sum" for name in SUMMARY_COUNTS}
    aggregations.update({name: "first" for name in extra})
    table = counts.groupby(by, sort=True).agg(aggregations).reset_index()

    def label(row: pd.Series) -> str:
        text = f"{row.n_positive}/{row.n_answered}"
        return f"{text} {ROLE_ABBREVIATIONS.get(row.role, row.role)}" if "role" in by else text

    table["label"] = table.apply(label, axis=1)
    table = table[columns]
    if definitions is not None and "item" in by:
        questions = {item.item_id: item.question for version in definitions.versions for item in version.items}
        table.insert(len(by) + len(extra), "question", table["item"].map(questions))
    return table


def questionnaire_evidence_of(store: Store) -> pd.DataFrame | None:
    """The stored questionnaire answers as rating evidence (None when there are none)."""
    frame = stored_questionnaire_evidence(store)
    return frame if len(frame) else None
