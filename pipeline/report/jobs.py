"""Rate a corpus and write its ratings and report: the last steps of the main job, shared by
the command line and the Prefect flows."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.coding import LoadedModel
from pipeline.coding.embed import EmbeddingCacheLike, Encoder
from pipeline.rating import ContextRating, Rating
from pipeline.store import Store

logger = logging.getLogger(__name__)


@dataclass
class RateResult:
    """Ratings, their files and the report files."""

    ratings: list[Rating] = field(default_factory=list)
    context: list[ContextRating] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    n_codings: int = 0


def rate_codings(codings: pd.DataFrame, codebook: Codebook, out_dir: Path, *, model_id: str,
                 questionnaire: pd.DataFrame | None = None, report: bool = True, fictional: bool = False,
                 region_name: str = "de regio", regions: Mapping[str, str] | None = None,
                 model_card: Mapping[str, Any] | None = None, review_url: str | None = None,
                 created_at: str = "") -> RateResult:
    """Rate incentives and context from a codings table; write ratings.json/.csv and, with
    ``report``, the HTML, Markdown and Excel report. ``regions``: municipality -> region
    (:func:`pipeline.rating.read_regions`); a ``region`` column in ``codings`` works too.
    ``model_card``: the card of the model that coded (its real-text scores go on the report's
    first screen and into the evaluation page); ``review_url``: the web app the fragments link to;
    ``created_at``: the report's date (ISO 8601; default now)."""
    from pipeline.rating import (
        compare_municipalities,
        load_rating_rules,
        rate_context,
        rate_incentives,
        write_ratings,
    )
    from pipeline.report.provenance import provenance_from_codings
    from pipeline.report.render import write_report
    from pipeline.report.trust import model_quality

    rules = load_rating_rules()
    ratings = rate_incentives(codings, codebook, rules, questionnaire, regions)
    context = rate_context(codings, codebook, rules, regions)
    files = list(write_ratings(ratings, out_dir))
    if report:
        provenance = provenance_from_codings(codings, model_id=model_id, codebook_version=codebook.version,
                                             rules_version=rules.version, created_at=created_at)
        written = write_report(out_dir, ratings, codebook, provenance, context=context,
                               differences=compare_municipalities(ratings, rules), codings=codings,
                               fictional=fictional, region_name=region_name, review_url=review_url,
                               quality=model_quality(model_card) if model_card else None)
        files += written.paths
    return RateResult(ratings, context, files)


def rate_table(table: Path, loaded: LoadedModel, encoder: Encoder, codebook: Codebook, out_dir: Path, *,
               cache: EmbeddingCacheLike | None = None, report: bool = False,
               regions: Mapping[str, str] | None = None, review_url: str | None = None) -> RateResult:
    """Classify a table of utterances (.jsonl/.csv: ``id,text,municipality,respondent[,role,region,
    question]``) with ``loaded`` and rate it alone, without the database (:func:`rate_codings`).
    A ``region`` column (or ``regions``: municipality -> region) says which region a row belongs to."""
    from pipeline.coding import classify_table
    from pipeline.corpus import read_table, table_roles

    frame = table_roles(read_table(table, required=("id", "text", "municipality", "respondent")), table)
    codings = classify_table(frame, loaded, encoder, codebook, cache=cache)
    if "region" in frame.columns:
        region_of = dict(zip(frame["id"].astype(str), frame["region"].astype(str), strict=True))
        codings["region"] = codings["utterance_id"].astype(str).map(region_of)
    return rate_codings(codings, codebook, out_dir, model_id=loaded.model_id, report=report, regions=regions,
                        model_card=loaded.card, review_url=review_url)


QUOTE_COLUMNS = ["utterance_id", "transcript_id", "turn", "code", "respondent", "role", "text", "direction", "facet",
                 "weight", "source"]


def rate_store(store: Store, codebook: Codebook, out_dir: Path, *, model_id: str,
               questionnaire: pd.DataFrame | None = None, report: bool = True, fictional: bool = False,
               region_name: str = "de regio", municipalities_per_frame: int = 10,
               regions: Mapping[str, str] | None = None, model_card: Mapping[str, Any] | None = None,
               review_url: str | None = None, created_at: str = "") -> RateResult:
    """:func:`rate_codings` of the store's codings (:meth:`Store.codings_frame`), streamed.

    The codings are read a few municipalities at a time and each part is reduced to its
    evidence (:func:`pipeline.rating.coded_fragments`) before the next is read, so the
    codings table of the whole corpus is never in memory; the report keeps the text of the
    rows it may quote only. Ratings, files and report are those of :func:`rate_codings` on
    the whole table.

    Parameters
    ----------
    store : Store
    codebook : Codebook
    out_dir : Path
        Where ratings.json/.csv and the report are written.
    model_id : str
        Whose predictions are rated, beside the human annotations.
    questionnaire, report, fictional, region_name, regions, model_card, review_url, created_at
        As for :func:`rate_codings`.
    municipalities_per_frame : int
        Municipalities read at a time.
    model_card : mapping, optional
        The model's card: the report names why this model codes (its promotion decision).

    Returns
    -------
    RateResult
        With ``n_codings``, the rows of the codings table.
    """
    from pipeline.rating import (
        CodedFragments,
        coded_fragments,
        compare_municipalities,
        load_rating_rules,
        rate_context,
        rate_incentives,
        write_ratings,
    )
    from pipeline.report.provenance import Provenance, model_selection_line
    from pipeline.report.render import write_report
    from pipeline.report.trust import model_quality

    rules = load_rating_rules()
    parts: list[CodedFragments] = []
    quotes: list[pd.DataFrame] = []
    n = dict.fromkeys(("transcripts", "documents", "utterances", "human", "predicted", "rows"), 0)
    for frame in store.iter_codings_frames(model_id, municipalities_per_frame=municipalities_per_frame):
        part = coded_fragments(frame.drop(columns="text"), codebook, rules, regions)
        parts.append(part)
        # a transcript and its utterances belong to one municipality: counts add up over parts
        documents = frame["role"] == "document"
        n["transcripts"] += int(frame.loc[~documents, "transcript_id"].nunique())
        n["documents"] += int(frame.loc[documents, "transcript_id"].nunique())
        n["utterances"] += int(frame["utterance_id"].nunique())
        n["human"] += int((frame["source"] == "human").sum())
        n["predicted"] += int((frame["source"] == "predicted").sum())
        n["rows"] += len(frame)
        if report:
            keys = part.keys
            quotable = [(u, c) in keys for u, c in zip(frame["utterance_id"], frame["code"], strict=True)]
            quotes.append(frame.loc[quotable, QUOTE_COLUMNS])
        del frame
    fragments = CodedFragments.join(parts)
    del parts
    ratings = rate_incentives(fragments, codebook, rules, questionnaire, regions)
    context = rate_context(fragments, codebook, rules, regions)
    files = list(write_ratings(ratings, out_dir))
    if report:
        provenance = Provenance(model_id=model_id, codebook_version=codebook.version, rules_version=rules.version,
                                n_transcripts=n["transcripts"], n_documents=n["documents"],
                                n_utterances=n["utterances"], n_human=n["human"], n_predicted=n["predicted"],
                                model_selection=model_selection_line(model_card), created_at=created_at)
        codings = pd.concat(quotes, ignore_index=True) if quotes else pd.DataFrame(columns=QUOTE_COLUMNS)
        written = write_report(out_dir, ratings, codebook, provenance, context=context,
                               differences=compare_municipalities(ratings, rules), codings=codings,
                               fictional=fictional, region_name=region_name, review_url=review_url,
                               quality=model_quality(model_card) if model_card else None)
        files += written.paths
    # ratings that rested on forgotten data (codeer forget) are computed again now
    store.clear_stale_ratings()
    return RateResult(ratings, context, files, n["rows"])
