"""The evidence of a codings table: validated fragments (one per utterance and code) and
questionnaire answers, the input of every verdict.

Input is a table of codings, one row per (utterance, code): human annotations and model
predictions, each with a direction (``+``/``-``/``0``), a facet (``provision``/``practice``)
and a weight (1.0 for a human annotation, the predicted probability for a prediction). Every
function here is pure and order-independent: shuffling the rows of its input does not change
its output.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.errors import TableFormatError, UnknownCodeError
from pipeline.rating.rules import ROLES, RatingRules
from pipeline.records import Annotation

REGION = "regio"
RATINGS = ("voldoende", "matig", "onvoldoende", "onvoldoende_bewijs")
CONTEXT_VERDICTS = ("bevorderend", "gemengd", "belemmerend", "onvoldoende_bewijs")
CODING_COLUMNS = ("utterance_id", "transcript_id", "municipality", "respondent", "role", "code", "direction",
                  "facet", "weight", "source")
QUESTIONNAIRE_COLUMNS = ("municipality", "code", "role", "respondent", "item", "answer", "score")
INTERVIEW_ROLES = ("beleidsmedewerker", "manager", "other")
_VALUES = {"+": 1, "-": -1, "0": 0}


@dataclass(frozen=True, slots=True)
class _Fragment:
    utterance_id: str
    municipality: str
    respondent: str
    role: str
    value: int
    weight: float  # certainty x facet weight
    certainty: float
    facet: str | None


@dataclass(frozen=True, slots=True)
class _Answer:
    respondent: str
    role: str
    score: float


# ---------------------------------------------------------------------------------- input


def codings_from_annotations(annotations: Iterable[Annotation]) -> pd.DataFrame:
    """The codings table of human annotations (weight 1, source ``human``).

    Parameters
    ----------
    annotations : iterable of Annotation
        Seed or hold-out annotations, e.g. from :func:`pipeline.corpus.annotations.read_annotations`.

    Returns
    -------
    pandas.DataFrame
        One row per (utterance, code) with the columns of :data:`CODING_COLUMNS` plus ``text``.
    """
    rows = [
        {"utterance_id": a.utterance_id, "transcript_id": a.transcript_id, "municipality": a.municipality,
         "respondent": a.respondent, "role": a.role or "other", "code": c.code, "direction": c.direction,
         "facet": c.facet, "weight": 1.0, "source": "human", "text": a.text}
        for a in annotations for c in a.codings
    ]
    return pd.DataFrame(rows, columns=[*CODING_COLUMNS, "text"])


def _check_columns(frame: pd.DataFrame, required: Sequence[str], name: str) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise TableFormatError(
            f"{name} table: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns)) or 'none'}. "
            f"Required: {', '.join(required)}.")


def _bad_value(name: str, column: str, row: pd.Series, expected: str) -> TableFormatError:
    where = f"utterance {row['utterance_id']!r}" if "utterance_id" in row else f"municipality {row.get('municipality')!r}"
    return TableFormatError(f"{name} table, {where}, column {column!r}: got {row[column]!r}, expected {expected}. "
                            "Correct the row or leave it out.")


def _first_bad(frame: pd.DataFrame, bad: pd.Series, name: str, column: str, expected: str) -> None:
    if bad.any():
        raise _bad_value(name, column, frame.loc[bad.idxmax()], expected)


def _fragments(codings: pd.DataFrame, codebook: Codebook, rules: RatingRules) -> list[tuple[str, _Fragment]]:
    """Validated (code, fragment) pairs: human codings override predictions, one per utterance and code."""
    _check_columns(codings, CODING_COLUMNS, "codings")
    frame = codings.reset_index(drop=True)
    # a human row without a code marks an utterance annotated as "no code": it overrides
    # predictions like any human row, and carries no evidence itself
    no_code = frame["code"].isna() | (frame["code"].astype(str).str.strip() == "")
    human = set(frame.loc[frame["source"].astype(str) == "human", "utterance_id"].astype(str))
    frame = frame.loc[~no_code].reset_index(drop=True)
    text = {column: frame[column].astype(str) for column in ("utterance_id", "municipality", "respondent", "role",
                                                             "code", "direction", "source")}
    unknown = ~text["code"].isin(list(codebook.by_id))
    if unknown.any():
        row = frame.loc[unknown.idxmax()]
        raise UnknownCodeError(f"codings table, utterance {row['utterance_id']!r}: unknown code {row['code']!r} in "
                               f"codebook version {codebook.version!r}; rate with the codebook the codings were "
                               "made with, or map them first")
    _first_bad(frame, ~text["direction"].isin(list(_VALUES)), "codings", "direction", "'+', '-' or '0'")
    _first_bad(frame, ~text["source"].isin(["human", "predicted"]), "codings", "source", "'human' or 'predicted'")
    _first_bad(frame, ~text["role"].isin(list(ROLES)), "codings", "role", "one of " + ", ".join(ROLES))
    facets = [value if isinstance(value, str) and value else None for value in frame["facet"]]
    _first_bad(frame, pd.Series([f not in (None, "provision", "practice") for f in facets]), "codings", "facet",
               "'provision', 'practice' or empty")
    weights = pd.to_numeric(frame["weight"], errors="coerce")
    _first_bad(frame, weights.isna() | (weights < 0) | (weights > 1), "codings", "weight", "a number between 0 and 1")
    certainties = weights.astype(float)
    if "direction_p" in frame.columns:
        # an uncertain direction is weaker evidence of either side
        direction_p = pd.to_numeric(frame["direction_p"], errors="coerce").fillna(1.0).clip(0.0, 1.0)
        certainties = certainties * direction_p
    kinds = {code: codebook[code].kind for code in set(text["code"])}
    best: dict[tuple[str, str], tuple[tuple[object, ...], _Fragment]] = {}
    for utterance_id, municipality, respondent, role, code, direction, source, facet, weight, certainty in zip(
            text["utterance_id"], text["municipality"], text["respondent"], text["role"], text["code"],
            text["direction"], text["source"], facets, weights, certainties, strict=True):
        if source == "predicted" and (utterance_id in human or weight < rules.evidence.min_predicted_weight):
            continue
        if kinds[code] == "incentive":
            facet = facet or rules.evidence.missing_facet
            facet_weight = getattr(rules.evidence.facet_weights, facet)
        else:
            facet, facet_weight = None, 1.0
        fragment = _Fragment(utterance_id, municipality, respondent, role, _VALUES[direction],
                             float(certainty) * facet_weight, float(certainty), facet)
        # one coding per utterance and code: the most certain, ties broken by content, not row order
        rank = (source == "human", certainty, direction, facet or "", municipality, respondent, role)
        key = (utterance_id, code)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, fragment)
    return [(key[1], best[key][1]) for key in sorted(best)]


@dataclass(frozen=True, slots=True)
class CodedFragments:
    """The validated evidence of a codings table, without its text: what rating needs of it.

    Made a part at a time by :func:`coded_fragments` and joined with :meth:`join`, so a corpus
    is rated without its whole codings table in memory (issue 8).
    """

    pairs: tuple[tuple[str, _Fragment], ...]

    @property
    def keys(self) -> set[tuple[str, str]]:
        """``(utterance id, code)`` of every fragment (the rows a report may quote)."""
        return {(fragment.utterance_id, code) for code, fragment in self.pairs}

    @classmethod
    def join(cls, parts: Iterable[CodedFragments]) -> CodedFragments:
        """Fragments of parts that split the corpus by utterance (by municipality, say)."""
        pairs = [pair for part in parts for pair in part.pairs]
        pairs.sort(key=lambda pair: (pair[1].utterance_id, pair[0]))  # the order of one whole table
        return cls(tuple(pairs))


def coded_fragments(codings: pd.DataFrame, codebook: Codebook, rules: RatingRules) -> CodedFragments:
    """Validate a codings table (as for :func:`rate_incentives`) and keep only its evidence.

    A table that holds every row of some utterances (every row of some municipalities, say)
    can be reduced on its own: rating the :meth:`CodedFragments.join` of such parts gives the
    ratings of the whole table.

    Examples
    --------
    >>> from pipeline.codebook import load_codebook
    >>> from pipeline.rating.rules import load_rating_rules
    >>> coded_fragments(codings_from_annotations([]), load_codebook(), load_rating_rules()).pairs
    ()
    """
    return CodedFragments(tuple(_fragments(codings, codebook, rules)))


def _answers(questionnaire: pd.DataFrame | None) -> dict[tuple[str, str], list[_Answer]]:
    if questionnaire is None or len(questionnaire) == 0:
        return {}
    _check_columns(questionnaire, QUESTIONNAIRE_COLUMNS, "questionnaire")
    answers: dict[tuple[str, str], list[_Answer]] = defaultdict(list)
    scores = pd.to_numeric(questionnaire["score"], errors="coerce")
    given = questionnaire["score"].notna() & (questionnaire["score"].astype(str).str.strip() != "")
    _first_bad(questionnaire.reset_index(drop=True), (given & (scores.isna() | (scores < -1) | (scores > 1)))
               .reset_index(drop=True), "questionnaire", "score", "a number between -1 and 1")
    for municipality, code, respondent, role, score in zip(
            questionnaire["municipality"].astype(str), questionnaire["code"].astype(str),
            questionnaire["respondent"].astype(str), questionnaire["role"].astype(str), scores, strict=True):
        if not math.isnan(score):
            answers[(municipality, code)].append(_Answer(respondent, role, float(score)))
    return {key: sorted(value, key=lambda a: (a.respondent, a.role, a.score)) for key, value in answers.items()}
