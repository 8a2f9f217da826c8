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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from pipeline.codebook import Codebook
from pipeline.errors import ConfigError, TableFormatError, UnknownCodeError
from pipeline.rating.rules import ROLES, RatingRules
from pipeline.records import Annotation

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
    weight: float  # certainty x direction probability x facet weight: how much its direction counts
    certainty: float  # the probability that the code is right (1.0 for a human coding)
    facet: str | None
    region: str = ""
    about_region: bool = False  # said of the region itself (a regional respondent, municipality = region)


@dataclass(frozen=True, slots=True)
class _Answer:
    respondent: str
    role: str
    score: float


# ---------------------------------------------------------------------------------- input


def read_regions(path: Path | str) -> dict[str, str]:
    """Read which municipality belongs to which region (issue 17: regions come from data).

    Parameters
    ----------
    path : Path or str
        A YAML file ``regions: {region: [municipality, ...]}`` (or the mapping itself at the
        top level), or a CSV file with the columns ``municipality`` and ``region``.

    Returns
    -------
    dict
        Municipality -> region.

    Raises
    ------
    ConfigError
        The file cannot be read, has another shape, or puts a municipality in two regions.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "regions.yaml"
    >>> _ = file.write_text("regions:\n  Achterhoek: [Aalten, Winterswijk]\n", encoding="utf-8")
    >>> read_regions(file)
    {'Aalten': 'Achterhoek', 'Winterswijk': 'Achterhoek'}
    """
    path = Path(path)
    shape = ("expected YAML 'regions:' with per region a list of municipalities, or a CSV with columns "
             "municipality,region")
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            if not {"municipality", "region"} <= set(frame.columns):
                raise ConfigError(f"{path}: found columns {', '.join(frame.columns)}; {shape}.")
            pairs = list(zip(frame["municipality"].str.strip(), frame["region"].str.strip(), strict=True))
        else:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            data = data.get("regions", data) if isinstance(data, dict) else data
            if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
                raise ConfigError(f"{path}: not a regions file; {shape}.")
            pairs = [(str(m).strip(), str(region).strip()) for region, members in data.items() for m in members]
    except (FileNotFoundError, yaml.YAMLError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the regions file ({type(err).__name__}); {shape}.") from err
    regions: dict[str, str] = {}
    for municipality, region in pairs:
        if not municipality or not region:
            continue
        if regions.setdefault(municipality, region) != region:
            raise ConfigError(f"{path}: municipality {municipality!r} is in two regions, {regions[municipality]!r} "
                              f"and {region!r}. Put it in one.")
    return regions



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


def _region_of(municipality: str, role: str, column: str, regions: Mapping[str, str], default: str
               ) -> tuple[str, bool]:
    """The region a row belongs to and whether it speaks of the region itself (issue 17).

    A ``region`` column wins; then the municipality -> region mapping; a municipality that is
    itself a region's name (or the default region's name) speaks of that region; anything else
    belongs to the default region, or to the only region of the mapping when it has one.
    """
    names = set(regions.values())
    only = next(iter(names)) if len(names) == 1 else default
    if municipality in names or municipality == default:
        region = column or (municipality if municipality in names else only)
        return region, True
    region = column or regions.get(municipality) or only
    return region, role == "regio"


def _fragments(codings: pd.DataFrame, codebook: Codebook, rules: RatingRules,
               regions: Mapping[str, str] | None = None) -> list[tuple[str, _Fragment]]:
    """Validated (code, fragment) pairs: human codings override predictions, one per utterance and code."""
    _check_columns(codings, CODING_COLUMNS, "codings")
    frame = codings.reset_index(drop=True)
    regions = dict(regions or {})
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
    region_column = (frame["region"].where(frame["region"].notna(), "").astype(str).str.strip()
                     if "region" in frame.columns else pd.Series([""] * len(frame)))
    default = rules.region.default_name
    best: dict[tuple[str, str], tuple[tuple[object, ...], _Fragment]] = {}
    for utterance_id, municipality, respondent, role, code, direction, source, facet, weight, certainty, column in zip(
            text["utterance_id"], text["municipality"], text["respondent"], text["role"], text["code"],
            text["direction"], text["source"], facets, weights, certainties, region_column, strict=True):
        if source == "predicted" and (utterance_id in human or weight < rules.evidence.min_predicted_weight):
            continue
        if kinds[code] == "incentive":
            facet = facet or rules.evidence.missing_facet
            facet_weight = getattr(rules.evidence.facet_weights, facet)
        else:
            facet, facet_weight = None, 1.0
        region, about_region = _region_of(municipality, role, column, regions, default)
        fragment = _Fragment(utterance_id, municipality, respondent, role, _VALUES[direction],
                             float(certainty) * facet_weight, float(weight), facet, region, about_region)
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


def coded_fragments(codings: pd.DataFrame, codebook: Codebook, rules: RatingRules,
                    regions: Mapping[str, str] | None = None) -> CodedFragments:
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
    return CodedFragments(tuple(_fragments(codings, codebook, rules, regions)))


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
