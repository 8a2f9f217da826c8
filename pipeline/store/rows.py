"""Rows to records and back: the helpers the store's modules share.

A leaf module (it imports no other store module), so :mod:`pipeline.store.database` and its query
mixins can all import it without a cycle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa

from pipeline.records import Coding, Role, Speaker, Utterance

S = TypeVar("S", bound=Sequence[Any])



@dataclass(frozen=True, slots=True)
class StoredTranscript:
    """A transcript row without its text."""

    transcript_id: str
    source: str
    municipality: str
    respondent: str
    role: str
    kind: str
    status: str
    n_utterances: int
    content_hash: str


@dataclass(frozen=True, slots=True)
class StoredAnnotation:
    """One annotation row: one code on one utterance by one annotator."""

    utterance_id: str
    transcript_id: str
    code: str
    direction: str
    facet: str | None
    annotator: str
    origin: str
    codebook_version: str
    created_at: str


def chunks(items: S, size: int) -> Iterator[S]:
    """``items`` in consecutive slices of at most ``size``: one statement per slice keeps an
    ``IN (...)`` list or a multi-row insert under the database's parameter limits (issue 8)."""
    for start in range(0, len(items), size):
        yield cast(S, items[start : start + size])  # a slice of a list is a list, of a tuple a tuple


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key of the row an INSERT added."""
    key = result.inserted_primary_key
    if key is None:  # only for an INSERT of several rows, which the store never asks an id of
        raise ValueError("the statement inserted no single row")
    return int(key[0])


def now() -> str:
    """The current UTC time as an ISO 8601 string (what the store records)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _utterance_row(utterance: Utterance) -> dict[str, object]:
    return {
        "id": utterance.utterance_id, "transcript_id": utterance.transcript_id, "turn": utterance.turn,
        "position": utterance.position, "speaker": utterance.speaker.value, "start_offset": utterance.start,
        "end_offset": utterance.end, "text": utterance.text, "question": utterance.question,
        "municipality": utterance.municipality, "respondent": utterance.respondent, "role": utterance.role.value,
    }


def _utterance_from_row(row: sa.RowMapping) -> Utterance:
    return Utterance(
        utterance_id=row["id"], transcript_id=row["transcript_id"], turn=row["turn"], position=row["position"],
        speaker=Speaker(row["speaker"]), start=row["start_offset"], end=row["end_offset"], text=row["text"],
        municipality=row["municipality"], respondent=row["respondent"], role=Role(row["role"]),
        question=row["question"],
    )


# review queue helpers (issue 6) ------------------------------------------------------------
def _codings_json(codings: Sequence[Coding]) -> str:
    return json.dumps([{"code": c.code, "direction": c.direction, "facet": c.facet} for c in codings])


def _codings_from_json(text: str | None) -> tuple[Coding, ...]:
    return tuple(Coding(c["code"], c["direction"], c.get("facet")) for c in json.loads(text or "[]"))


# the annotator's queue filters (issue 21) --------------------------------------------------
def narrow_review_items(query: sa.Select[Any], review_items: sa.Table, utterances: sa.Table,
                        predictions: sa.Table, municipality: str | None, respondent: str | None,
                        code: str | None) -> sa.Select[Any]:
    """``query`` over ``review_items`` kept to one municipality, one respondent and/or one suggested code.

    An item suggests a code when its model predicts the code for the utterance or, where the
    model predicts none, when the code is the model's most probable one.
    """
    r = review_items
    # aliases: the outer query may join utterances itself, which must not swallow these subqueries
    u, p, other = utterances.alias("narrow_u"), predictions.alias("narrow_p"), predictions.alias("top_p")
    if municipality or respondent:
        of_utterance = sa.select(u.c.id).where(u.c.id == r.c.utterance_id)
        if municipality:
            of_utterance = of_utterance.where(u.c.municipality == municipality)
        if respondent:
            of_utterance = of_utterance.where(u.c.respondent == respondent)
        query = query.where(of_utterance.exists())
    if code:
        # "no code is more probable" stops at the first more probable code: for most items the
        # wanted code is not the top one, and that shows in a row or two (938 -> 107 ms on 12k items)
        more_probable = sa.select(other.c.code).where(
            other.c.utterance_id == p.c.utterance_id, other.c.model_id == p.c.model_id,
            other.c.probability > p.c.probability).exists()
        query = query.where(sa.select(p.c.code).where(
            p.c.utterance_id == r.c.utterance_id, p.c.model_id == r.c.model_id, p.c.code == code,
            sa.or_(p.c.predicted.is_(True), ~more_probable)).exists())
    return query
