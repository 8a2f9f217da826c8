"""The real-evidence check (issue 17): the rating rules on the real-text development set,
against the region verdicts the thesis states. It asserts that the check runs and reports,
not a level of agreement (the figures are in docs/ratings.md)."""

from __future__ import annotations

import pytest

from pipeline.codebook import load_codebook
from pipeline.rating.rules import load_rating_rules
from pipeline.rating.thesis_check import (
    REALTEXT_DIR,
    check_against_thesis,
    confusion_table,
    read_items,
    read_thesis_verdicts,
    thesis_codings,
    threshold_sensitivity,
)

BOOK = load_codebook("garvin2008")
RULES = load_rating_rules()
ITEMS, VERDICTS = REALTEXT_DIR / "items.jsonl", REALTEXT_DIR / "thesis_verdicts.yaml"
needs_realtext = pytest.mark.skipif(not (ITEMS.is_file() and VERDICTS.is_file()),
                                    reason="pipeline/resources/annotations/realtext/ (the real-text development set) is not in this checkout")


def _item(number: int, code: str, direction: str | None, *, section: str = "7.1", genre: str = "prose",
          facet: str | None = "practice", also: tuple[str, ...] = ()) -> dict[str, object]:
    return {"id": f"r{number}", "text": "...", "code": code, "direction": direction, "facet": facet,
            "section": section, "split": "yardstick", "genre": genre, "also": list(also)}


def test_thesis_check_codings_leave_out_the_verdict_sentences_and_questions() -> None:
    items = [_item(1, "tijd_evaluatie", "-", section="6.3"), _item(2, "tijd_evaluatie", "-", section="7.3"),
             _item(3, "analyse", "-", section="6.1", also=("onderwijs_training",)),  # states the verdict
             _item(4, "analyse", "-", genre="question"),  # presupposes an answer
             _item(5, "decentralisaties", "-", facet=None), _item(6, "analyse", None),
             _item(7, "experimenteren", "+", also=("tijd_evaluatie", "cultuur"))]
    codings = thesis_codings(items, BOOK, RULES)
    assert list(zip(codings["utterance_id"], codings["code"], strict=True)) == [
        ("r1", "tijd_evaluatie"), ("r2", "tijd_evaluatie"), ("r7", "experimenteren"), ("r7", "tijd_evaluatie")]
    assert set(codings["municipality"]) == {RULES.region.default_name}  # region-level evidence
    assert list(codings["respondent"][:2]) == ["§6.3", "§7.3"]


def test_thesis_check_counts_matches_within_one_and_confusion() -> None:
    items = [_item(1, "tijd_evaluatie", "-", section="6.3"), _item(2, "tijd_evaluatie", "-", section="7.3"),
             _item(3, "experimenteren", "+", section="2.3"), _item(4, "experimenteren", "+", section="7.1")]
    verdicts = {"tijd_evaluatie": "onvoldoende", "experimenteren": "matig", "analyse": "onvoldoende"}
    check = check_against_thesis(thesis_codings(items, BOOK, RULES), verdicts, BOOK, RULES)
    assert (check.n_incentives, check.n_match, check.n_within_one, check.n_no_evidence) == (3, 1, 2, 1)
    assert check.confusion == (("matig", "voldoende", 1), ("onvoldoende", "onvoldoende", 1),
                               ("onvoldoende", "onvoldoende_bewijs", 1))
    table = confusion_table(check)
    assert "| onvoldoende | 1 | 0 | 0 | 1 |" in table and "| matig | 0 | 0 | 1 | 0 |" in table
    grid = threshold_sensitivity(thesis_codings(items, BOOK, RULES), verdicts, BOOK, RULES,
                                 {"thresholds.min_sources.region": (2.0, 3.0), "thresholds.onvoldoende": (0.5,)})
    # two sections per incentive are not three sources; onvoldoende 0.5 crosses voldoende: skipped
    assert [(key, value, c.n_match, c.n_no_evidence) for key, value, c in grid] == [
        ("thresholds.min_sources.region", 2.0, 1, 1), ("thresholds.min_sources.region", 3.0, 0, 3)]


@needs_realtext
def test_thesis_check_runs_on_the_real_text_development_set() -> None:
    verdicts = read_thesis_verdicts(VERDICTS)
    assert len(verdicts) == len(BOOK.incentives) == 13
    codings = thesis_codings(read_items(ITEMS), BOOK, RULES)
    assert len(codings) > 0 and not (codings["utterance_id"].str.startswith("r6.1")).any()
    check = check_against_thesis(codings, verdicts, BOOK, RULES)
    assert check.n_incentives == 13 and sum(n for _, _, n in check.confusion) == 13
    assert 0 <= check.n_match <= check.n_within_one <= 13
    assert len(threshold_sensitivity(codings, verdicts, BOOK, RULES)) > 0
