"""Calibrate how model predictions count as rating evidence, without the answer key.

The rating rules were written for human codings; predictions are noisier. To set the rules
that only touch predictions (``evidence.min_predicted_weight``) honestly, the model codes each
seed transcript out of fold (trained on the other transcripts), and the ratings made with that
transcript's *predictions* in place of its human codings are compared with the ratings the
human codings give. This is the situation of a real run: most respondents hand-coded, new
transcripts coded by the model. The demo answer key is never used here; it is checked once,
afterwards (``docs/ratings.md``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from pipeline.codebook import Codebook
from pipeline.coding import CodingModel, Features, TrainingConfig, TrainingSet, code_rows, predictions_for, training_set
from pipeline.coding.embed import EmbeddingCacheLike
from pipeline.rating.evidence import CODING_COLUMNS, codings_from_annotations
from pipeline.rating.rules import RatingRules
from pipeline.rating.verdicts import rate_incentives
from pipeline.records import Annotation


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    """Agreement of one rules variant with the human-coded ratings."""

    min_predicted_weight: float
    agreement: float
    n_cells: int
    misses: tuple[tuple[str, str, int], ...]  # (human rating, rating with predictions, count)


def out_of_fold_codings(annotations: Sequence[Annotation], X: Features, codebook: Codebook,
                        fit: Callable[[Features, TrainingSet], CodingModel], *, n_splits: int = 5) -> pd.DataFrame:
    """Predicted codings of every annotated utterance by a model that never saw its transcript.

    Parameters
    ----------
    annotations : sequence of Annotation
        The seed annotations (one transcript = one group).
    X : Features
        Features of ``training_set(annotations, codebook)``, in its row order.
    codebook : Codebook
    fit : callable
        Fits a model on a part of the annotations (:func:`pipeline.coding.model_fitter`).
    n_splits : int
        Folds, grouped by transcript.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`pipeline.rating.CODING_COLUMNS` plus ``direction_p``, one row per
        predicted (utterance, code), ``source`` = ``predicted``, ``weight`` = probability.
    """
    data = training_set(annotations, codebook)
    first = {a.utterance_id: a for a in reversed(annotations)}
    ids = list(dict.fromkeys(a.utterance_id for a in annotations))
    rows = []
    groups = np.asarray(data.groups)
    for train, test in GroupKFold(n_splits=min(n_splits, len(set(data.groups)))).split(data.Y, data.Y, groups):
        model = fit(X[train], data.subset(train))
        coded = code_rows([ids[i] for i in test], X[test], model, "out-of-fold", codebook)
        for p in predictions_for(coded, model.codes):
            if p.predicted:
                meta = first[p.utterance_id]
                rows.append((p.utterance_id, meta.transcript_id, meta.municipality, meta.respondent,
                             meta.role or "other", p.code, p.direction, p.facet, p.probability, "predicted",
                             p.direction_p))
    return pd.DataFrame(rows, columns=[*CODING_COLUMNS, "direction_p"])


def _cells(codings: pd.DataFrame, codebook: Codebook, rules: RatingRules,
           questionnaire: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    return {(r.municipality, r.code): r.rating for r in rate_incentives(codings, codebook, rules, questionnaire)
            if r.municipality != "regio"}


def swapped_agreement(human: pd.DataFrame, predicted: pd.DataFrame, codebook: Codebook, rules: RatingRules,
                      questionnaire: pd.DataFrame | None = None) -> CalibrationPoint:
    """Swap one transcript at a time from human codings to its predictions; share of that
    municipality's (human-rated) incentive cells whose rating stays the same.

    Parameters
    ----------
    human, predicted : pandas.DataFrame
        Codings tables (:data:`pipeline.rating.CODING_COLUMNS`): the human codings, and
        out-of-fold predictions of the same transcripts (:func:`out_of_fold_codings`).
    codebook : Codebook
    rules : RatingRules
        The rules variant to score.
    questionnaire : pandas.DataFrame, optional
        Questionnaire evidence, used in both ratings.

    Returns
    -------
    CalibrationPoint
        Cells rated *onvoldoende bewijs* from the human codings are not counted; regional
        respondents' transcripts are skipped (they feed only the region rows).
    """
    reference = _cells(human, codebook, rules, questionnaire)
    kept = n_cells = 0
    misses: Counter[tuple[str, str]] = Counter()
    for transcript_id, rows in sorted(predicted.groupby("transcript_id"), key=lambda item: str(item[0])):
        if (rows["role"] == "regio").any():
            continue
        municipality = rows["municipality"].iloc[0]
        swapped = _cells(pd.concat([human[human["transcript_id"] != transcript_id], rows], ignore_index=True),
                         codebook, rules, questionnaire)
        for (name, code), expected in reference.items():
            if name != municipality or expected == "onvoldoende_bewijs":
                continue
            got = swapped.get((name, code), "ontbreekt")
            n_cells += 1
            kept += got == expected
            if got != expected:
                misses[(expected, got)] += 1
    return CalibrationPoint(rules.evidence.min_predicted_weight, kept / n_cells if n_cells else 0.0, n_cells,
                            tuple((a, b, n) for (a, b), n in misses.most_common()))


def calibrate_prediction_weight(annotations: Sequence[Annotation], predicted: pd.DataFrame, codebook: Codebook,
                                rules: RatingRules, questionnaire: pd.DataFrame | None = None,
                                candidates: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)) -> list[CalibrationPoint]:
    """Score each candidate ``evidence.min_predicted_weight`` with :func:`swapped_agreement`."""
    human = codings_from_annotations(annotations)
    points = []
    for value in candidates:
        variant = rules.model_copy(update={"evidence": rules.evidence.model_copy(update={"min_predicted_weight": value})})
        points.append(swapped_agreement(human, predicted, codebook, variant, questionnaire))
    return points


def calibrate_on_seed(codebook: Codebook, rules: RatingRules, questionnaire: pd.DataFrame | None,
                      candidates: Sequence[float], *, config: TrainingConfig,
                      cache: EmbeddingCacheLike | None = None, show_progress: bool = False) -> list[CalibrationPoint]:
    """:func:`calibrate_prediction_weight` on the shipped seed annotations: embed them with
    ``config``'s encoder, code every transcript out of fold, and score each candidate."""
    from pipeline.coding import featurize, load_encoder, model_fitter, seed_annotations

    annotations = seed_annotations(codebook)
    data = training_set(annotations, codebook)
    encoder = load_encoder(config.encoder)
    X, _, _ = featurize(data.texts, encoder, questions=data.questions, cache=cache, show_progress=show_progress)
    fit, _ = model_fitter(codebook, data.codes, encoder, config, cache=cache)
    predicted = out_of_fold_codings(annotations, X, codebook, fit, n_splits=config.n_splits)
    return calibrate_prediction_weight(annotations, predicted, codebook, rules, questionnaire, candidates)
