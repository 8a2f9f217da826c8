"""Ratings as tables and files (``ratings.json``, ``ratings.csv``), and agreement with an answer key."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline.errors import ConfigError
from pipeline.rating.context import ContextRating
from pipeline.rating.verdicts import Rating

# ---------------------------------------------------------------------------------- output


def ratings_frame(ratings: Sequence[Rating]) -> pd.DataFrame:
    """The ratings as a table, one row per rating, columns as the :class:`Rating` fields.

    ``evidence``, ``respondents`` and ``caveats`` stay tuples.
    """
    columns = list(Rating.__dataclass_fields__)
    return pd.DataFrame([asdict(r) for r in ratings], columns=columns)


def context_frame(context: Sequence[ContextRating]) -> pd.DataFrame:
    """The context verdicts as a table, one row per (municipality, context code)."""
    columns = list(ContextRating.__dataclass_fields__)
    return pd.DataFrame([asdict(r) for r in context], columns=columns)


def rating_row(rating: Rating) -> dict[str, object]:
    """The JSON row of a rating in ``ratings.json``.

    ``level`` is ``municipality`` or ``region`` (then ``municipality`` holds the region's name);
    ``sources_for`` / ``sources_against`` are the respondent codes that carry the verdict and
    those that pull the other way; ``stability`` the share of leave-one-source-out verdicts
    equal to ``rating`` (issue 17).
    """
    return {
        "level": rating.level, "region": rating.region,
        "municipality": rating.municipality, "code": rating.code, "rating": rating.rating, "score": rating.score,
        "confidence": rating.confidence, "n_utterances": rating.n_utterances, "n_respondents": rating.n_respondents,
        "rationale": rating.rationale_nl, "rationale_en": rating.rationale_en, "evidence": list(rating.evidence),
        "respondents": list(rating.respondents), "share_plus": rating.share_plus, "share_minus": rating.share_minus,
        "share_neutral": rating.share_neutral, "role_agreement": rating.role_agreement,
        "caveats": list(rating.caveats), "n_sources": rating.n_sources, "sources_for": list(rating.sources_for),
        "sources_against": list(rating.sources_against), "stability": rating.stability,
    }


def write_ratings(ratings: Sequence[Rating], out_dir: Path | str) -> tuple[Path, Path]:
    """Write ``ratings.json`` (a list of rows) and ``ratings.csv`` into ``out_dir``.

    Parameters
    ----------
    ratings : sequence of Rating
    out_dir : Path or str
        Created if missing.

    Returns
    -------
    tuple of Path
        The JSON and the CSV file. In the CSV, ``evidence`` ids are joined with ``;`` and
        respondent codes with ``; ``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [rating_row(r) for r in ratings]
    json_path, csv_path = out_dir / "ratings.json", out_dir / "ratings.csv"
    json_path.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    flat = [{**row, "evidence": ";".join(r.evidence), "respondents": "; ".join(r.respondents),
             "caveats": ";".join(r.caveats), "sources_for": "; ".join(r.sources_for),
             "sources_against": "; ".join(r.sources_against)} for row, r in zip(rows, ratings, strict=True)]
    pd.DataFrame(flat, columns=list(rows[0]) if rows else None).to_csv(csv_path, index=False, encoding="utf-8")
    return json_path, csv_path


def agreement_with_answer_key(ratings: Sequence[Rating | Mapping[str, Any]], intended_picture_path: Path | str
                              ) -> tuple[float, list[tuple[str, str, str, str]]]:
    """Share of answer-key cells the municipal ratings reproduce, and the misses.

    Parameters
    ----------
    ratings : sequence of Rating or mapping
        Ratings, or rows of ``ratings.json`` (``municipality``, ``code``, ``rating``).
    intended_picture_path : Path or str
        A YAML answer key like ``data/demo/intended_picture.yaml``: ``municipalities:`` ->
        name -> ``incentives:`` -> code -> verdict. Cells marked ``niet_besproken`` are skipped;
        a cell without a rating, or rated ``onvoldoende_bewijs``, counts as a miss.

    Returns
    -------
    tuple
        ``(share, misses)`` with ``misses`` as (municipality, code, expected, got) tuples.

    Raises
    ------
    ConfigError
        If the file cannot be read or is not an answer key.
    """
    path = Path(intended_picture_path)
    try:
        key = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the answer key ({type(err).__name__}). Pass a YAML file like "
                          "data/demo/intended_picture.yaml.") from err
    if not isinstance(key, dict) or not isinstance(key.get("municipalities"), dict):
        raise ConfigError(f"{path}: not an answer key; expected 'municipalities:' with per municipality "
                          "'incentives:' code: verdict. See data/demo/intended_picture.yaml.")
    got = {(r["municipality"], r["code"]): r["rating"] for r in ratings if isinstance(r, Mapping)}
    got.update({(r.municipality, r.code): r.rating for r in ratings if not isinstance(r, Mapping)})
    n_cells, misses = 0, []
    for municipality, entry in sorted(key["municipalities"].items()):
        for code, expected in (entry.get("incentives") or {}).items():
            if expected == "niet_besproken":
                continue
            n_cells += 1
            actual = got.get((municipality, code), "ontbreekt")
            if actual != expected:
                misses.append((municipality, code, expected, actual))
    share = (n_cells - len(misses)) / n_cells if n_cells else 0.0
    return share, misses
