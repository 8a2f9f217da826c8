"""Ratings from coded fragments: the rules pinned on small hand-made evidence tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codebook import load_codebook
from pipeline.corpus.annotations import read_annotations
from pipeline.errors import ConfigError, RatingRulesError, TableFormatError, UnknownCodeError
from pipeline.rating.context import rate_context
from pipeline.rating.differences import compare_municipalities
from pipeline.rating.evidence import codings_from_annotations
from pipeline.rating.output import agreement_with_answer_key, rating_row, ratings_frame, write_ratings
from pipeline.rating.rules import load_rating_rules, parse_rating_rules
from pipeline.rating.verdicts import rate_incentives
from pipeline.resources import holdout_dir, rules_file, seed_dir

BOOK = load_codebook("garvin2008")
RULES = load_rating_rules()
ROOT = Path(__file__).resolve().parent.parent
ROLE_BY_LETTER = {"B": "beleidsmedewerker", "M": "manager", "D": "document", "R": "regio"}
REGION = RULES.region.default_name  # input without region data forms one region of this name
SAFETY, TRAINING, LISTENING = "psychologische_veiligheid", "onderwijs_training", "actief_bevragen_luisteren"


def say(municipality: str, respondent: str, code: str, directions: str, facet: str | None = "practice",
        weight: float = 1.0, source: str = "human") -> list[dict[str, object]]:
    """One coded fragment per character of ``directions`` ('+', '-', '0')."""
    return [{"municipality": municipality, "respondent": respondent, "role": ROLE_BY_LETTER[respondent[0]],
             "transcript_id": f"t-{respondent}", "code": code, "direction": direction, "facet": facet,
             "weight": weight, "source": source, "text": f"fragment {direction}"} for direction in directions]


def table(*groups: list[dict[str, object]]) -> pd.DataFrame:
    """A codings table with a unique utterance id per fragment."""
    rows = [row for group in groups for row in group]
    for number, row in enumerate(rows):
        row.setdefault("utterance_id", f"u{number:04d}")
    return pd.DataFrame(rows)


def rating(ratings, municipality: str, code: str):  # type: ignore[no-untyped-def]
    return next(r for r in ratings if r.municipality == municipality and r.code == code)


# ------------------------------------------------------------------------------ the rules


def test_aggregate_all_positive_from_several_respondents_is_voldoende() -> None:
    ratings = rate_incentives(table(say("Eschveld", "BE", SAFETY, "+++"), say("Eschveld", "ME", SAFETY, "++")),
                              BOOK, RULES)
    result = rating(ratings, "Eschveld", SAFETY)
    assert result.rating == "voldoende"
    assert result.score == 1.0 and result.share_plus == 1.0
    assert (result.n_utterances, result.n_respondents, result.respondents) == (5, 2, ("BE", "ME"))
    assert "(BE; ME)" in result.rationale_nl and "(BE; ME)" in result.rationale_en
    assert 0 < result.confidence <= 1


def test_aggregate_mixed_evidence_is_matig() -> None:
    ratings = rate_incentives(table(say("Eschveld", "BE", SAFETY, "++-0"), say("Eschveld", "ME", SAFETY, "+-")),
                              BOOK, RULES)
    assert rating(ratings, "Eschveld", SAFETY).rating == "matig"


def test_aggregate_mostly_negative_is_onvoldoende() -> None:
    ratings = rate_incentives(table(say("Eschveld", "BE", SAFETY, "---+"), say("Eschveld", "ME", SAFETY, "--0")),
                              BOOK, RULES)
    result = rating(ratings, "Eschveld", SAFETY)
    assert result.rating == "onvoldoende"
    assert result.share_minus > result.share_plus


def test_aggregate_silent_or_unsure_sources_are_onvoldoende_bewijs() -> None:
    # one hesitant prediction is not a source that surely spoke (presence 0.6 < 1.0)
    ratings = rate_incentives(table(say("Eschveld", "BE", SAFETY, "+", weight=0.6, source="predicted"),
                                    say("Eschveld", "ME", TRAINING, "+++")), BOOK, RULES)
    result = rating(ratings, "Eschveld", SAFETY)
    assert result.rating == "onvoldoende_bewijs"
    assert result.confidence == 0.0 and result.evidence == ("u0000",) and result.n_sources == 0.6
    assert (result.sources_for, result.sources_against) == ((), ())
    assert "Te weinig bewijs" in result.rationale_nl and "Not enough evidence" in result.rationale_en
    # every incentive gets a row, even one nobody spoke about
    assert rating(ratings, "Eschveld", LISTENING).rating == "onvoldoende_bewijs"
    assert rating(ratings, "Eschveld", LISTENING).score is None


def test_aggregate_a_source_counts_once_however_talkative() -> None:
    # issue 17: evidence counts sources, not probability mass
    talkative = rate_incentives(table(say("Eschveld", "BE", SAFETY, "+" * 5, weight=0.6, source="predicted")),
                                BOOK, RULES)
    assert rating(talkative, "Eschveld", SAFETY).n_sources < 1.0
    assert rating(talkative, "Eschveld", SAFETY).rating == "onvoldoende_bewijs"
    one_each = rate_incentives(table(say("Eschveld", "BE", SAFETY, "+", weight=0.6, source="predicted"),
                                     say("Eschveld", "ME", SAFETY, "+", weight=0.6, source="predicted")), BOOK, RULES)
    assert rating(one_each, "Eschveld", SAFETY).n_sources == pytest.approx(1.2)
    assert rating(one_each, "Eschveld", SAFETY).rating != "onvoldoende_bewijs"


def test_aggregate_one_respondent_alone_says_it_rests_on_one_source() -> None:
    result = rating(rate_incentives(table(say("Eschveld", "BE", SAFETY, "+++++")), BOOK, RULES), "Eschveld", SAFETY)
    assert result.rating == "voldoende" and result.sources_for == ("BE",) and result.sources_against == ()
    assert result.stability == 0.0  # without BE nothing is left
    assert "rust op één bron" in result.rationale_nl and "rests on one source" in result.rationale_en


def test_aggregate_every_verdict_lists_sources_for_and_against_and_stability() -> None:
    codings = table(say("Eschveld", "BE", SAFETY, "+++"), say("Eschveld", "ME", SAFETY, "++"),
                    say("Eschveld", "DE", SAFETY, "--", facet="provision"))
    result = rating(rate_incentives(codings, BOOK, RULES), "Eschveld", SAFETY)
    assert result.rating == "voldoende"
    assert result.sources_for == ("BE", "ME") and result.sources_against == ("DE",)
    assert result.stability == pytest.approx(1 / 3, abs=1e-4)  # without BE or ME, DE's objection makes it matig
    assert "Gedragen door (BE; ME); de andere kant op: (DE)." in result.rationale_nl


def test_aggregate_provision_positive_practice_negative_is_not_voldoende() -> None:
    # budget for courses everywhere, but hardly anyone goes (the thesis on education and training)
    codings = table(say("Hulsterlo", "BH", TRAINING, "++++", facet="provision"),
                    say("Hulsterlo", "MH", TRAINING, "+++", facet="provision"),
                    say("Hulsterlo", "DH", TRAINING, "++++", facet="provision"),
                    say("Hulsterlo", "BH", TRAINING, "--", facet="practice"),
                    say("Hulsterlo", "MH", TRAINING, "-", facet="practice"))
    result = rating(rate_incentives(codings, BOOK, RULES), "Hulsterlo", TRAINING)
    assert result.rating != "voldoende"
    assert result.score_provision == 1.0 and result.score_practice == -1.0


def test_aggregate_provision_only_positive_evidence_never_makes_voldoende() -> None:
    codings = table(say("Hulsterlo", "BH", TRAINING, "+++", facet="provision"),
                    say("Hulsterlo", "MH", TRAINING, "+++", facet="provision"),
                    say("Hulsterlo", "DH", TRAINING, "+++", facet="provision"))
    result = rating(rate_incentives(codings, BOOK, RULES), "Hulsterlo", TRAINING)
    assert result.score >= RULES.thresholds.voldoende  # the balance alone would say voldoende
    assert result.rating == "matig"
    assert "practice_not_shown" in result.caveats
    assert "praktijk weegt zwaarder dan aanbod" in result.rationale_nl


def test_aggregate_practice_outweighs_provision() -> None:
    # as many provision + as practice -: the balance leans negative
    codings = table(say("Kerkeloo", "BK", TRAINING, "+++", facet="provision"),
                    say("Kerkeloo", "MK", TRAINING, "---", facet="practice"),
                    say("Kerkeloo", "BK", TRAINING, "---", facet="practice"),
                    say("Kerkeloo", "MK", TRAINING, "+++", facet="provision"))
    assert rating(rate_incentives(codings, BOOK, RULES), "Kerkeloo", TRAINING).score < 0


def _region(spec: dict[str, str]) -> pd.DataFrame:
    groups = []
    for municipality, directions in spec.items():
        suffix = municipality[0]
        groups += [say(municipality, f"B{suffix}", SAFETY, directions), say(municipality, f"M{suffix}", SAFETY, directions)]
    return table(*groups)


def test_aggregate_divergent_municipalities_pull_region_to_matig() -> None:
    divergent = _region({"Eschveld": "+++", "Hulsterlo": "+++", "Kerkeloo": "+++", "Ravenhorst": "+++",
                         "Sonnevelde": "+++", "Lemmerbroek": "---", "Zandeloo": "--0"})
    region = rating(rate_incentives(divergent, BOOK, RULES), REGION, SAFETY)
    assert region.score >= RULES.thresholds.voldoende  # the mean alone would say voldoende
    assert region.rating == "matig"
    assert "divergent" in region.caveats
    assert "lopen sterk uiteen" in region.rationale_nl


def test_aggregate_region_without_divergence_keeps_its_verdict() -> None:
    agreeing = _region({"Eschveld": "+++", "Hulsterlo": "+++", "Kerkeloo": "+++", "Ravenhorst": "+++",
                        "Sonnevelde": "+++", "Lemmerbroek": "+-0", "Zandeloo": "++-"})
    ratings = rate_incentives(agreeing, BOOK, RULES)
    region = rating(ratings, REGION, SAFETY)
    assert region.rating == "voldoende" and "divergent" not in region.caveats
    assert [r.municipality for r in ratings if r.code == SAFETY] == [
        "Eschveld", "Hulsterlo", "Kerkeloo", "Lemmerbroek", "Ravenhorst", "Sonnevelde", "Zandeloo", REGION]
    assert "7 van 7 gemeenten beoordeeld" in region.rationale_nl


def test_aggregate_region_pools_its_sources_where_municipalities_say_too_little() -> None:
    # issue 17: eight municipalities, each respondent one unsure prediction: no municipality has
    # enough, the region (16 sources at 0.45) has, and says so
    groups = [say(m, f"{role}{m[:2]}", TRAINING, "-", weight=0.45, source="predicted")
              for m in ("Eschveld", "Hulsterlo", "Kerkeloo", "Lemmerbroek", "Ravenhorst", "Sonnevelde", "Zandeloo",
                        "Aldeloo") for role in "BM"]
    ratings = rate_incentives(table(*groups), BOOK, RULES)
    assert all(r.rating == "onvoldoende_bewijs" for r in ratings if r.level == "municipality" and r.code == TRAINING)
    region = rating(ratings, REGION, TRAINING)
    assert region.level == "region" and region.rating == "onvoldoende"
    assert region.n_sources == pytest.approx(16 * 0.45) and len(region.sources_for) == 16
    assert "0 van 8 gemeenten beoordeeld" in region.rationale_nl


def test_aggregate_region_with_one_source_is_onvoldoende_bewijs() -> None:
    region = rating(rate_incentives(table(say("Eschveld", "BE", SAFETY, "+++")), BOOK, RULES), REGION, SAFETY)
    assert region.rating == "onvoldoende_bewijs" and region.n_sources == 1.0


def test_aggregate_two_regions_from_one_input() -> None:
    # regions come from data: a region column, or a municipality -> region mapping
    rows = table(*[say(m, f"{role}{m[0]}", SAFETY, d) for m, d in (("Eschveld", "+++"), ("Hulsterlo", "++"))
                   for role in "BM"],
                 *[say(m, f"{role}{m[0]}", SAFETY, d) for m, d in (("Kerkeloo", "---"), ("Zandeloo", "--0"))
                   for role in "BM"],
                 say("Oost", "RO", SAFETY, "+"), say("West", "RW", SAFETY, "-"))
    mapping = {"Eschveld": "Oost", "Hulsterlo": "Oost", "Kerkeloo": "West", "Zandeloo": "West"}
    by_column = rows.assign(region=rows["municipality"].map(mapping).fillna(rows["municipality"]))
    for ratings in (rate_incentives(rows, BOOK, RULES, regions=mapping), rate_incentives(by_column, BOOK, RULES)):
        regions = [r for r in ratings if r.level == "region" and r.code == SAFETY]
        assert [(r.municipality, r.rating) for r in regions] == [("Oost", "voldoende"), ("West", "onvoldoende")]
        assert "RO" in regions[0].respondents and "RO" not in regions[1].respondents  # rows about the region itself
        assert {r.municipality: r.region for r in ratings if r.level == "municipality" and r.code == SAFETY} == mapping
        assert REGION not in {r.municipality for r in ratings}
    context = rate_context(rows, BOOK, RULES, regions=mapping)
    assert [c.municipality for c in context if c.level == "region"][:1] == ["Oost"]


def test_aggregate_read_regions_from_yaml_and_csv(tmp_path: Path) -> None:
    from pipeline.rating import read_regions

    (tmp_path / "r.yaml").write_text("regions:\n  Oost: [Eschveld, Hulsterlo]\n  West: [Kerkeloo]\n", encoding="utf-8")
    (tmp_path / "r.csv").write_text("municipality,region\nEschveld,Oost\nHulsterlo,Oost\nKerkeloo,West\n",
                                    encoding="utf-8")
    assert read_regions(tmp_path / "r.yaml") == read_regions(tmp_path / "r.csv") == {
        "Eschveld": "Oost", "Hulsterlo": "Oost", "Kerkeloo": "West"}
    (tmp_path / "bad.yaml").write_text("regions:\n  Oost: [Eschveld]\n  West: [Eschveld]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'Eschveld' is in two regions"):
        read_regions(tmp_path / "bad.yaml")


def test_aggregate_regional_respondent_feeds_only_the_region() -> None:
    base = {"Eschveld": "+++", "Hulsterlo": "+++", "Kerkeloo": "++0"}
    with_regional = table(*[[*say(m, f"B{m[0]}", SAFETY, d), *say(m, f"M{m[0]}", SAFETY, d)] for m, d in base.items()],
                          say("Lemmerbroek", "RL", SAFETY, "-----"))
    ratings = rate_incentives(with_regional, BOOK, RULES)
    assert "Lemmerbroek" not in {r.municipality for r in ratings}
    without = rate_incentives(_region(base), BOOK, RULES)
    assert rating(ratings, REGION, SAFETY).score < rating(without, REGION, SAFETY).score
    assert "RL" in rating(ratings, REGION, SAFETY).respondents


def test_aggregate_human_annotation_overrides_prediction() -> None:
    human = table(say("Eschveld", "BE", SAFETY, "+++"), say("Eschveld", "ME", SAFETY, "++"))
    predicted = human.copy()
    predicted["source"], predicted["direction"], predicted["weight"] = "predicted", "-", 0.99
    both = pd.concat([human, predicted], ignore_index=True)
    assert rating(rate_incentives(both, BOOK, RULES), "Eschveld", SAFETY) == \
        rating(rate_incentives(human, BOOK, RULES), "Eschveld", SAFETY)


def test_aggregate_human_no_code_row_silences_predictions() -> None:
    human = table(say("Eschveld", "BE", SAFETY, "+++"), say("Eschveld", "ME", SAFETY, "++"))
    predicted = table(say("Eschveld", "ME", SAFETY, "---", source="predicted", weight=0.9))
    predicted["utterance_id"] = ["p1", "p2", "p3"]
    marker = predicted.iloc[:1].assign(source="human", code=None, direction="0", weight=1.0)
    result = rating(rate_incentives(pd.concat([human, predicted, marker], ignore_index=True), BOOK, RULES),
                    "Eschveld", SAFETY)
    assert "p1" not in result.evidence and {"p2", "p3"} <= set(result.evidence)


def test_aggregate_predictions_count_with_their_probability() -> None:
    confident = table(say("Eschveld", "BE", SAFETY, "+++", source="predicted", weight=0.9),
                      say("Eschveld", "ME", SAFETY, "-", source="predicted", weight=0.9))
    unsure_minus = table(say("Eschveld", "BE", SAFETY, "+++", source="predicted", weight=0.9),
                         say("Eschveld", "ME", SAFETY, "-", source="predicted", weight=0.55))
    below_minimum = table(say("Eschveld", "BE", SAFETY, "+++", source="predicted", weight=0.9),
                          say("Eschveld", "ME", SAFETY, "-", source="predicted",
                              weight=RULES.evidence.min_predicted_weight / 2))
    scores = [rating(rate_incentives(c, BOOK, RULES), "Eschveld", SAFETY) for c in (confident, unsure_minus, below_minimum)]
    assert scores[0].score < scores[1].score
    assert scores[2].n_utterances == 3 and scores[2].respondents == ("BE",)


def test_aggregate_managers_judge_their_own_leadership_kindly() -> None:
    codings = table(say("Lemmerbroek", "BL", LISTENING, "+---"), say("Lemmerbroek", "ML", LISTENING, "++++"))
    result = rating(rate_incentives(codings, BOOK, RULES), "Lemmerbroek", LISTENING)
    assert result.role_agreement == pytest.approx(1.5)
    # the manager's self-assessment counts half, so the officer's view weighs more
    assert result.score < 0.25
    assert "contested" in result.caveats and result.rating == "matig"
    assert "de manager is positiever" in result.rationale_nl
    same_on_safety = rating(rate_incentives(table(say("Lemmerbroek", "BL", SAFETY, "+---"),
                                                  say("Lemmerbroek", "ML", SAFETY, "++++")), BOOK, RULES),
                            "Lemmerbroek", SAFETY)
    assert same_on_safety.score == pytest.approx(0.25)


def test_aggregate_questionnaire_is_a_separate_weighted_source() -> None:
    codings = table(say("Eschveld", "BE", SAFETY, "++-"), say("Eschveld", "ME", SAFETY, "+0"))
    questionnaire = pd.DataFrame([
        {"municipality": "Eschveld", "code": SAFETY, "role": "beleidsmedewerker", "respondent": "BE", "item": "q1",
         "answer": "eens", "score": 1.0},
        {"municipality": "Eschveld", "code": SAFETY, "role": "manager", "respondent": "ME", "item": "q1",
         "answer": "helemaal eens", "score": 1.0},
    ])
    without = rating(rate_incentives(codings, BOOK, RULES), "Eschveld", SAFETY)
    with_answers = rating(rate_incentives(codings, BOOK, RULES, questionnaire), "Eschveld", SAFETY)
    assert with_answers.score > without.score
    assert with_answers.n_questionnaire == 2 and with_answers.score_questionnaire == 1.0
    assert "1/1 BM" in with_answers.rationale_nl and "1/1 M" in with_answers.rationale_nl
    assert rate_incentives(codings, BOOK, RULES, questionnaire.iloc[0:0]) == rate_incentives(codings, BOOK, RULES)


def test_aggregate_rationale_never_quotes_fragment_text() -> None:
    codings = table(say("Eschveld", "BE", SAFETY, "+++"), say("Eschveld", "ME", SAFETY, "++"))
    for result in rate_incentives(codings, BOOK, RULES):
        assert "fragment" not in result.rationale_nl.replace("fragmenten", "")
        assert "fragment +" not in result.rationale_en


# ------------------------------------------------------------------------------ order independence


_ROWS = st.lists(
    st.tuples(st.sampled_from(["Eschveld", "Hulsterlo", "Kerkeloo"]), st.sampled_from(["B", "M", "D", "R"]),
              st.sampled_from([SAFETY, TRAINING, LISTENING, "cultuur"]), st.sampled_from(["+", "-", "0"]),
              st.sampled_from(["practice", "provision", None]), st.sampled_from([0.3, 0.55, 0.8, 1.0]),
              st.sampled_from(["human", "predicted"]), st.integers(0, 40)),
    min_size=1, max_size=60)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_ROWS, seed=st.integers(0, 2**16))
def test_aggregate_shuffled_rows_give_identical_ratings(rows, seed: int) -> None:  # type: ignore[no-untyped-def]
    records = [{"utterance_id": f"u{number}", "transcript_id": f"t{letter}", "municipality": municipality,
                "respondent": f"{letter}{municipality[0]}", "role": ROLE_BY_LETTER[letter], "code": code,
                "direction": direction, "facet": facet, "weight": weight, "source": source, "text": "x"}
               for municipality, letter, code, direction, facet, weight, source, number in rows]
    codings = pd.DataFrame(records)
    shuffled = codings.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    assert rate_incentives(shuffled, BOOK, RULES) == rate_incentives(codings, BOOK, RULES)
    assert rate_context(shuffled, BOOK, RULES) == rate_context(codings, BOOK, RULES)


# ------------------------------------------------------------------------------ input checks


def test_aggregate_bad_direction_names_utterance_and_column() -> None:
    codings = table(say("Eschveld", "BE", SAFETY, "++"))
    codings.loc[1, "direction"] = "plus"
    with pytest.raises(TableFormatError, match=r"utterance 'u0001', column 'direction': got 'plus', expected '\+'"):
        rate_incentives(codings, BOOK, RULES)


@pytest.mark.parametrize(("column", "value", "message"), [
    ("weight", 1.7, "column 'weight': got 1.7, expected a number between 0 and 1"),
    ("role", "wethouder", "column 'role': got 'wethouder', expected one of"),
    ("facet", "budget", "column 'facet': got 'budget'"),
    ("source", "model", "column 'source': got 'model'"),
])
def test_aggregate_bad_values_are_reported(column: str, value: object, message: str) -> None:
    codings = table(say("Eschveld", "BE", SAFETY, "++"))
    codings[column] = codings[column].astype(object)
    codings.loc[0, column] = value
    with pytest.raises(TableFormatError, match=message):
        rate_incentives(codings, BOOK, RULES)


def test_aggregate_unknown_code_and_missing_column() -> None:
    with pytest.raises(UnknownCodeError, match="unknown code 'ervaren_tijd' in codebook version 'garvin2008'"):
        rate_incentives(table(say("Eschveld", "BE", "ervaren_tijd", "+")), BOOK, RULES)
    with pytest.raises(TableFormatError, match="missing column.*facet"):
        rate_incentives(table(say("Eschveld", "BE", SAFETY, "+")).drop(columns="facet"), BOOK, RULES)


# ------------------------------------------------------------------------------ rules file


def _rules_data() -> dict:
    return yaml.safe_load(rules_file().read_text(encoding="utf-8"))


@pytest.mark.parametrize(("change", "key", "message"), [
    (lambda d: d["thresholds"].update(voldoende=-0.5), "thresholds", "must lie below voldoende"),
    (lambda d: d["thresholds"].update(voldoende="hoog"), "thresholds.voldoende",
     "invalid value 'hoog'. Expected a valid number"),
    (lambda d: d["evidence"]["facet_weights"].update(provision=0.9, practice=0.4), "evidence.facet_weights",
     "practice outweighs provision"),
    (lambda d: d["thresholds"].update(min_utterance=3), "thresholds.min_utterance", "unknown key"),
    (lambda d: d["region"].pop("divergence"), "region.divergence", "missing key"),
    (lambda d: d["evidence"]["source_weights"].update(document=-1), "evidence.source_weights.document",
     "Expected greater than or equal to 0"),
])
def test_rating_rules_validation_errors_name_file_key_and_fix(  # type: ignore[no-untyped-def]
        change, key: str, message: str) -> None:
    data = _rules_data()
    change(data)
    with pytest.raises(RatingRulesError, match=message) as raised:
        parse_rating_rules(data, "mijn-regels.yaml")
    text = str(raised.value)
    assert text.startswith(f"mijn-regels.yaml, key {key!r}:")
    assert "pipeline/resources/annotations/rating_rules.yaml" in text  # the fix points to the documented file
    assert raised.value.key == key


def test_rating_rules_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RatingRulesError, match="no such file"):
        load_rating_rules(tmp_path / "geen.yaml")
    broken = tmp_path / "kapot.yaml"
    broken.write_text("thresholds:\n  voldoende: [0.4\n", encoding="utf-8")
    with pytest.raises(RatingRulesError, match=r"kapot.yaml: invalid YAML at line \d"):
        load_rating_rules(broken)
    with pytest.raises(RatingRulesError, match="not a rules file"):
        parse_rating_rules(["a"], "lijst.yaml")


def test_rating_rules_shipped_file_is_versioned_and_loads() -> None:
    assert RULES.version and RULES.path.endswith("rating_rules.yaml")
    assert RULES.evidence.facet_weights.practice > RULES.evidence.facet_weights.provision
    assert set(RULES.context.codes) <= set(BOOK.context_codes)


# ------------------------------------------------------------------------------ context and differences


def test_aggregate_context_verdicts_per_municipality_and_region() -> None:
    codings = table(say("Eschveld", "BE", "cultuur", "++", facet=None), say("Eschveld", "ME", "cultuur", "+0", facet=None),
                    say("Eschveld", "BE", "omgeving", "--", facet=None), say("Eschveld", "ME", "omgeving", "-", facet=None),
                    say("Hulsterlo", "BH", "cultuur", "+-", facet=None), say("Hulsterlo", "MH", "cultuur", "-+0", facet=None),
                    say("Lemmerbroek", "RL", "cultuur", "---", facet=None))
    context = rate_context(codings, BOOK, RULES)
    verdicts = {(c.municipality, c.code): c.verdict for c in context}
    assert verdicts[("Eschveld", "cultuur")] == "bevorderend"
    assert verdicts[("Eschveld", "omgeving")] == "belemmerend"
    assert verdicts[("Hulsterlo", "cultuur")] == "gemengd"
    assert verdicts[("Hulsterlo", "omgeving")] == "onvoldoende_bewijs"
    region = next(c for c in context if c.municipality == REGION and c.code == "cultuur")
    assert region.respondents == ("BE", "BH", "ME", "MH", "RL") and region.n_utterances == 12
    assert {c.code for c in context} == set(RULES.context.codes)
    assert "(BE; ME)" in next(c for c in context if c.municipality == "Eschveld" and c.code == "cultuur").rationale_nl


def test_aggregate_compare_municipalities_spread_stand_outs_and_learning_pairs() -> None:
    codings = table(
        say("Eschveld", "BE", SAFETY, "+++"), say("Eschveld", "ME", SAFETY, "+++"),
        say("Hulsterlo", "BH", SAFETY, "+-0"), say("Hulsterlo", "MH", SAFETY, "+-0"),
        say("Kerkeloo", "BK", SAFETY, "---"), say("Kerkeloo", "MK", SAFETY, "---"),
        say("Eschveld", "BE", TRAINING, "---"), say("Eschveld", "ME", TRAINING, "---"),
        say("Kerkeloo", "BK", TRAINING, "+++"), say("Kerkeloo", "MK", TRAINING, "+++"),
    )
    differences = compare_municipalities(rate_incentives(codings, BOOK, RULES), RULES)
    safety = next(s for s in differences.spreads if s.code == SAFETY)
    assert (safety.n_municipalities, safety.spread, safety.mean) == (3, 2.0, 0.0)
    assert safety.high == ("Eschveld",) and safety.low == ("Kerkeloo",)
    pairs = {(p.code, p.strong, p.weak): p for p in differences.pairs}
    assert set(pairs) == {(SAFETY, "Eschveld", "Kerkeloo"), (TRAINING, "Kerkeloo", "Eschveld")}
    assert all(p.mutual and p.gap == 2.0 for p in pairs.values())
    assert [s.code for s in differences.spreads] == list(BOOK.incentives)


# ------------------------------------------------------------------------------ output


def test_aggregate_write_ratings_json_and_csv(tmp_path: Path) -> None:
    ratings = rate_incentives(_region({"Eschveld": "+++", "Hulsterlo": "++-", "Kerkeloo": "---"}), BOOK, RULES)
    json_path, csv_path = write_ratings(ratings, tmp_path / "reports")
    rows = json.loads(json_path.read_text(encoding="utf-8"))
    assert len(rows) == len(ratings) == 4 * len(BOOK.incentives)
    for key in ("municipality", "code", "rating", "score", "confidence", "n_utterances", "n_respondents",
                "rationale", "evidence"):
        assert key in rows[0]
    region = next(r for r in rows if r["municipality"] == "regio" and r["code"] == SAFETY)
    assert isinstance(region["evidence"], list) and len(region["evidence"]) == 18
    assert region["level"] == "region" and {r["level"] for r in rows} == {"municipality", "region"}
    for row in rows:  # every verdict lists its supporting and opposing sources (issue 17)
        assert isinstance(row["sources_for"], list) and isinstance(row["sources_against"], list)
        assert "stability" in row and "n_sources" in row
    assert region["rating"] == "matig"  # mixed sources carry it, the clear ones on either side pull away
    assert region["sources_for"] == ["BH", "MH"] and region["sources_against"] == ["BE", "BK", "ME", "MK"]
    table_back = pd.read_csv(csv_path, keep_default_na=False)
    assert list(table_back["municipality"].unique()) == ["Eschveld", "Hulsterlo", "Kerkeloo", "regio"]
    assert table_back.loc[0, "evidence"].count(";") == len(rows[0]["evidence"]) - 1
    frame = ratings_frame(ratings)
    assert len(frame) == len(ratings) and {"share_plus", "role_agreement", "rationale_en"} <= set(frame.columns)


def test_aggregate_agreement_with_answer_key(tmp_path: Path) -> None:
    key = tmp_path / "key.yaml"
    key.write_text(yaml.safe_dump({"municipalities": {
        "Eschveld": {"incentives": {SAFETY: "voldoende", TRAINING: "onvoldoende", LISTENING: "niet_besproken"}},
        "Kerkeloo": {"incentives": {SAFETY: "onvoldoende"}},
    }}), encoding="utf-8")
    ratings = rate_incentives(table(say("Eschveld", "BE", SAFETY, "+++"), say("Eschveld", "ME", SAFETY, "++"),
                                    say("Kerkeloo", "BK", SAFETY, "--"), say("Kerkeloo", "MK", SAFETY, "--")),
                              BOOK, RULES)
    share, misses = agreement_with_answer_key(ratings, key)
    assert share == pytest.approx(2 / 3)
    assert misses == [("Eschveld", TRAINING, "onvoldoende", "onvoldoende_bewijs")]
    # the rows of ratings.json give the same answer
    rows = json.loads(json.dumps([rating_row(r) for r in ratings]))
    assert agreement_with_answer_key(rows, key) == (share, misses)
    with pytest.raises(ConfigError, match="geen.yaml: cannot read the answer key"):
        agreement_with_answer_key(ratings, tmp_path / "geen.yaml")


def test_aggregate_human_codings_reproduce_the_demo_answer_key() -> None:
    annotations = read_annotations([seed_dir(), holdout_dir()], BOOK)
    codings = codings_from_annotations(annotations)
    assert set(codings["source"]) == {"human"} and set(codings["weight"]) == {1.0}
    ratings = rate_incentives(codings, BOOK, RULES)
    share, misses = agreement_with_answer_key(ratings, ROOT / "data" / "demo" / "intended_picture.yaml")
    assert share >= 0.9, misses
    region = [r for r in ratings if r.municipality == REGION]
    assert len(region) == len(BOOK.incentives) and all(r.rating != "onvoldoende_bewijs" for r in region)
