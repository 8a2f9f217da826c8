"""Calibrating how predictions count: swap a transcript's human codings for its predictions."""

from __future__ import annotations

import pandas as pd

from pipeline.codebook import load_codebook
from pipeline.rating.calibration import swapped_agreement
from pipeline.rating.rules import load_rating_rules
from tests.test_aggregate import SAFETY, say, table

BOOK = load_codebook("garvin2008")
RULES = load_rating_rules()


def _with_minimum(value: float):  # type: ignore[no-untyped-def]
    # a municipality needs more than one sure source here, so that dropping ME's predictions shows
    min_sources = RULES.thresholds.min_sources.model_copy(update={"municipality": 1.5})
    return RULES.model_copy(update={
        "evidence": RULES.evidence.model_copy(update={"min_predicted_weight": value}),
        "thresholds": RULES.thresholds.model_copy(update={"min_sources": min_sources})})


def test_swapped_agreement_counts_cells_whose_rating_survives_the_swap() -> None:
    human = table(say("Eschveld", "BE", SAFETY, "+++"), say("Eschveld", "ME", SAFETY, "+++"),
                  say("Kerkeloo", "BK", SAFETY, "---"), say("Kerkeloo", "MK", SAFETY, "---"))
    # the model codes ME's transcript with the right direction but modest probabilities
    predicted = table(say("Eschveld", "ME", SAFETY, "+++", source="predicted", weight=0.35))
    predicted["utterance_id"] = ["p1", "p2", "p3"]
    strict = swapped_agreement(human, predicted, BOOK, _with_minimum(0.5))
    lenient = swapped_agreement(human, predicted, BOOK, _with_minimum(0.3))
    # only Eschveld's rated cells count (the swapped transcript's municipality)
    assert strict.n_cells == lenient.n_cells == 1
    # dropped under 0.5, ME no longer counts and Eschveld lacks evidence; at 0.3 the verdict holds
    assert strict.agreement == 0.0 and strict.misses == (("voldoende", "onvoldoende_bewijs", 1),)
    assert lenient.agreement == 1.0 and lenient.misses == ()


def test_swapped_agreement_skips_the_regional_respondent() -> None:
    human = table(say("Eschveld", "BE", SAFETY, "+++"), say("Eschveld", "ME", SAFETY, "+++"),
                  say("Lindeland", "RL", SAFETY, "+++"))
    predicted = table(say("Lindeland", "RL", SAFETY, "---", source="predicted", weight=0.9))
    assert swapped_agreement(human, pd.DataFrame(predicted), BOOK, RULES).n_cells == 0
