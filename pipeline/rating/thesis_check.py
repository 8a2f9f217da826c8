"""The real-evidence check (issue 17): the rating rules on hand-labelled thesis sentences,
compared with the region verdicts the thesis itself states (chapter 6.1).

The real-text development set (``pipeline/resources/annotations/realtext/items.jsonl``, built from the thesis;
see its README) gives each sentence a gold code, direction and facet. Fed to the rules as human
codings (probability 1), with the thesis section as the source (a section is one document,
cited once per code), they are evidence about the region as a whole: the sentences name no
municipality. The verdict sentences of 6.1 and their echo in 6.2 state the answer and are left
out. :func:`threshold_sensitivity` moves one threshold at a time over a grid and counts the
thesis verdicts reproduced, so that a reader sees how much each setting matters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline.codebook import Codebook
from pipeline.errors import ConfigError
from pipeline.rating.evidence import CODING_COLUMNS
from pipeline.rating.rules import RatingRules
from pipeline.rating.verdicts import rate_incentives
from pipeline.resources import annotations_dir

REALTEXT_DIR = annotations_dir() / "realtext"
LEVELS = ("onvoldoende", "matig", "voldoende")
VERDICT_SECTIONS = ("6.1", "6.2")  # they state the region verdicts themselves: the answer, not evidence


@dataclass(frozen=True, slots=True)
class ThesisCheck:
    """How many region verdicts of the rules match the thesis, and the confusion."""

    n_incentives: int
    n_match: int
    n_within_one: int
    n_no_evidence: int
    confusion: tuple[tuple[str, str, int], ...]  # (thesis verdict, rules verdict, count)
    cells: tuple[tuple[str, str, str], ...]  # (code, thesis verdict, rules verdict)


def read_items(path: Path | str) -> list[dict[str, Any]]:
    """The items of a real-text development set (one JSON object per line)."""
    path = Path(path)
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (FileNotFoundError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the real-text items ({type(err).__name__}). "
                          "Expected pipeline/resources/annotations/realtext/items.jsonl, one JSON object per line.") from err


def read_thesis_verdicts(path: Path | str) -> dict[str, str]:
    """Incentive code -> the region verdict the thesis states (``verdicts:`` in the YAML)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the thesis verdicts ({type(err).__name__}). "
                          "Expected pipeline/resources/annotations/realtext/thesis_verdicts.yaml.") from err
    return {entry["code"]: entry["verdict"] for entry in data.get("verdicts", []) if entry.get("verdict")}


def thesis_codings(items: Iterable[Mapping[str, Any]], codebook: Codebook, rules: RatingRules, *,
                   splits: Sequence[str] = ("train", "yardstick"), genres: Sequence[str] = ("prose", "recommendation"),
                   leave_out_sections: Sequence[str] = VERDICT_SECTIONS, with_also: bool = True,
                   source: str = "section") -> pd.DataFrame:
    """The items as a codings table of region-level evidence (gold codes, probability 1).

    Parameters
    ----------
    items : iterable of mapping
        From :func:`read_items`.
    codebook : Codebook
    rules : RatingRules
        Its ``region.default_name`` is the municipality of every row: the items speak of the
        region itself.
    splits, genres : sequence of str
        Which items to use. Topic-list questions (genre ``question``) presuppose an answer and
        are left out by default.
    leave_out_sections : sequence of str
        Sections whose sentences state the verdicts (6.1, 6.2).
    with_also : bool
        Also code an item for the codes in its ``also`` (same direction and facet).
    source : str
        ``section``: a thesis section is one source (as a document); ``item``: every sentence
        is its own source (an upper bound on how much the set can say).

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`pipeline.rating.CODING_COLUMNS`; only incentive codes of items with a
        direction; respondent = ``§<section>`` (or the item id).
    """
    incentives = set(codebook.incentives)
    rows = []
    for item in items:
        if (item.get("direction") is None or item.get("split") not in splits or item.get("genre") not in genres
                or item.get("section") in leave_out_sections):
            continue
        codes = [item["code"], *(item.get("also") or [])] if with_also else [item["code"]]
        for code in dict.fromkeys(c for c in codes if c in incentives):
            rows.append({"utterance_id": item["id"], "transcript_id": f"thesis-{item['section']}",
                         "municipality": rules.region.default_name,
                         "respondent": f"§{item['section']}" if source == "section" else item["id"],
                         "role": "other", "code": code, "direction": item["direction"], "facet": item.get("facet"),
                         "weight": 1.0, "source": "human"})
    return pd.DataFrame(rows, columns=list(CODING_COLUMNS))


def check_against_thesis(codings: pd.DataFrame, verdicts: Mapping[str, str], codebook: Codebook,
                         rules: RatingRules) -> ThesisCheck:
    """Rate ``codings`` and compare each region verdict with the thesis.

    A verdict is within one level when it lies next to the thesis' on onvoldoende - matig -
    voldoende; ``onvoldoende_bewijs`` is never a match, nor within one.
    """
    ratings = rate_incentives(codings, codebook, rules)
    got = {r.code: r.rating for r in ratings if r.level == "region"}
    cells: list[tuple[str, str, str]] = []
    confusion: dict[tuple[str, str], int] = {}
    for code in codebook.incentives:
        if code not in verdicts:
            continue
        actual = got.get(code, "onvoldoende_bewijs")
        cells.append((code, verdicts[code], actual))
        confusion[(verdicts[code], actual)] = confusion.get((verdicts[code], actual), 0) + 1
    match = sum(expected == actual for _, expected, actual in cells)
    within = sum(actual in LEVELS and abs(LEVELS.index(expected) - LEVELS.index(actual)) <= 1
                 for _, expected, actual in cells)
    return ThesisCheck(len(cells), match, within, sum(a == "onvoldoende_bewijs" for _, _, a in cells),
                       tuple((e, a, n) for (e, a), n in sorted(confusion.items())), tuple(cells))


def _with(rules: RatingRules, dotted: str, value: Any) -> RatingRules:
    """A copy of ``rules`` with one (dotted) key set, validated like the file."""
    data = rules.model_dump(exclude={"path"})
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return RatingRules.model_validate({**data, "path": rules.path})


SENSITIVITY_GRID: dict[str, tuple[Any, ...]] = {
    "thresholds.voldoende": (0.15, 0.25, 0.35, 0.45, 0.55),
    "thresholds.onvoldoende": (-0.05, -0.15, -0.25, -0.35, -0.45),
    "thresholds.min_sources.region": (1.0, 2.0, 3.0, 4.0),
    "evidence.facet_weights.provision": (0.25, 0.5, 1.0),
    "practice.voldoende_min_practice_sources": (0.0, 0.5, 1.0, 2.0),
}


def threshold_sensitivity(codings: pd.DataFrame, verdicts: Mapping[str, str], codebook: Codebook,
                          rules: RatingRules, grid: Mapping[str, Sequence[Any]] | None = None
                          ) -> list[tuple[str, Any, ThesisCheck]]:
    """Move each threshold over its grid (the others as in ``rules``) and check each variant.

    Returns
    -------
    list of (key, value, ThesisCheck)
        In grid order; a value that makes the rules invalid (e.g. cut-offs crossing) is skipped.
    """
    result = []
    for key, values in (grid or SENSITIVITY_GRID).items():
        for value in values:
            try:
                variant = _with(rules, key, value)
            except ValueError:
                continue
            result.append((key, value, check_against_thesis(codings, verdicts, codebook, variant)))
    return result


def confusion_table(check: ThesisCheck) -> str:
    """The confusion of verdicts as a Markdown table (rows: thesis, columns: rules)."""
    columns = (*LEVELS, "onvoldoende_bewijs")
    counts = {(e, a): n for e, a, n in check.confusion}
    lines = ["| thesis \\ rules | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for expected in LEVELS:
        lines.append(f"| {expected} | " + " | ".join(str(counts.get((expected, a), 0)) for a in columns) + " |")
    return "\n".join(lines)
