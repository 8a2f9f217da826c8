"""The privacy SQL (issue 19), mixed into :class:`pipeline.store.database.Store`: the respondent
code registry, erasure of a respondent or a transcript, and ratings marked for recomputation."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from pipeline.store.rows import chunks, inserted_id, now

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ErasurePlan:
    """What an erasure will remove: found before anything is deleted, so the caller can scrub the
    embedding cache and the report files of the same texts first."""

    transcript_ids: tuple[str, ...]
    utterance_ids: tuple[str, ...]
    respondents: tuple[str, ...]
    municipalities: tuple[str, ...]
    texts: tuple[str, ...] = field(repr=False)  # utterance texts and their questions, for the scrubbing
    forget_codes: tuple[str, ...] = ()  # respondent codes whose registry rows go too


class PrivacyQueries:
    """Respondent codes, erasure and stale ratings (migration 0005); a mixin of the Store."""

    engine: Engine
    tables: Mapping[str, sa.Table]

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[Connection]: ...

    def _table(self, name: str) -> sa.Table:
        cache: dict[str, sa.Table] = self.__dict__.setdefault("_privacy_tables", {})
        if name not in cache:
            cache[name] = sa.Table(name, sa.MetaData(), autoload_with=self.engine)
        return cache[name]

    # the registry -----------------------------------------------------------------------
    def respondent_code(self, key: str, prefix: str = "R") -> str:
        """The code registered for the HMAC ``key``; on first use the next one (``R0001``,
        ``R0002``, ...), numbered by the row id, so two keys never share a code."""
        r = self._table("respondent_codes")
        for _ in range(3):  # a concurrent ingest may register the same key first
            with self.transaction() as connection:
                code = connection.execute(sa.select(r.c.code).where(r.c.key == key)).scalar_one_or_none()
                if code is not None:
                    return str(code)
                try:
                    with connection.begin_nested():
                        new_id = inserted_id(connection.execute(r.insert().values(key=key, code=None,
                                                                                  created_at=now())))
                        code = f"{prefix}{int(new_id):04d}"
                        connection.execute(r.update().where(r.c.id == new_id).values(code=code))
                    return code
                except IntegrityError:
                    continue
        raise RuntimeError(f"respondent code for key {key[:8]}… could not be registered")  # pragma: no cover

    def respondent_known(self, code: str) -> bool:
        """Whether the registry issued ``code`` or any stored row carries it."""
        r = self._table("respondent_codes")
        answers = self._table("questionnaire_answers")
        with self.engine.connect() as connection:
            return connection.execute(sa.select(r.c.id).where(r.c.code == code)).first() is not None or \
                connection.execute(sa.select(answers.c.id).where(answers.c.respondent == code)).first() is not None

    def count_respondent_codes(self) -> int:
        """How many codes the registry has issued."""
        r = self._table("respondent_codes")
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(r)).scalar_one())

    # erasure ------------------------------------------------------------------------------
    def erasure_plan(self, *, respondent: str | None = None, transcript: str | None = None) -> ErasurePlan:
        """What forgetting ``respondent`` (a code) or ``transcript`` (an id, a prefix of one, or a
        source key; every stored version of that source) removes. Empty when nothing matches."""
        t, u = self.tables["transcripts"], self.tables["utterances"]
        with self.engine.connect() as connection:
            if respondent is not None:
                ids = list(connection.execute(sa.select(t.c.id).where(t.c.respondent == respondent)).scalars())
                # utterances can carry the respondent code without their transcript (tables)
                ids += list(connection.execute(sa.select(u.c.transcript_id).where(u.c.respondent == respondent)
                                               .distinct()).scalars())
            else:
                assert transcript is not None
                sources = list(connection.execute(sa.select(t.c.source).where(
                    sa.or_(t.c.id.startswith(transcript), t.c.source == transcript))).scalars().unique())
                ids = list(connection.execute(sa.select(t.c.id).where(t.c.source.in_(sources))).scalars()) \
                    if sources else []
            ids = sorted(set(ids))
            utterance_ids: list[str] = []
            texts: set[str] = set()
            respondents: set[str] = set()
            municipalities: set[str] = set()
            for chunk in chunks(ids, _CHUNK):
                for row in connection.execute(sa.select(t.c.respondent, t.c.municipality).where(t.c.id.in_(chunk))):
                    respondents.add(row.respondent)
                    municipalities.add(row.municipality)
                for utterance in connection.execute(sa.select(u.c.id, u.c.text, u.c.question, u.c.municipality)
                                                    .where(u.c.transcript_id.in_(chunk))):
                    utterance_ids.append(utterance.id)
                    texts.update(text for text in (utterance.text, (utterance.question or "").strip()) if text)
                    municipalities.add(utterance.municipality)
        if respondent is not None:
            respondents.add(respondent)
            answers = self._table("questionnaire_answers")
            with self.engine.connect() as connection:
                municipalities.update(connection.execute(
                    sa.select(answers.c.municipality).where(answers.c.respondent == respondent).distinct()).scalars())
        return ErasurePlan(tuple(ids), tuple(sorted(utterance_ids)), tuple(sorted(respondents)),
                           tuple(sorted(municipalities)), tuple(sorted(texts)),
                           (respondent,) if respondent is not None else ())

    def erase(self, plan: ErasurePlan, reason: str) -> dict[str, int]:
        """Delete everything ``plan`` names in one transaction and mark the ratings of its
        municipalities for recomputation; return the rows removed per table."""
        removed: dict[str, int] = {}
        u, t = self.tables["utterances"], self.tables["transcripts"]
        a, p, items = self.tables["annotations"], self.tables["predictions"], self.tables["review_items"]
        decisions = self._table("review_decisions")
        answers = self._table("questionnaire_answers")
        codes = self._table("respondent_codes")
        stale = self._table("stale_ratings")

        def count(name: str, result: sa.CursorResult[Any]) -> None:
            removed[name] = removed.get(name, 0) + max(result.rowcount or 0, 0)

        with self.transaction() as connection:
            utterance_ids = list(plan.utterance_ids)
            for chunk in chunks(utterance_ids, _CHUNK):
                item_ids = list(connection.execute(sa.select(items.c.id).where(items.c.utterance_id.in_(chunk))).scalars())
                for item_chunk in chunks(item_ids, _CHUNK):
                    count("review_decisions", connection.execute(decisions.delete().where(decisions.c.item_id.in_(item_chunk))))
                count("review_decisions", connection.execute(decisions.delete().where(decisions.c.utterance_id.in_(chunk))))
                count("review_items", connection.execute(items.delete().where(items.c.utterance_id.in_(chunk))))
                count("annotations", connection.execute(a.delete().where(a.c.utterance_id.in_(chunk))))
                count("predictions", connection.execute(p.delete().where(p.c.utterance_id.in_(chunk))))
                count("utterances", connection.execute(u.delete().where(u.c.id.in_(chunk))))
            for chunk in chunks(list(plan.transcript_ids), _CHUNK):
                # a newer version points at the one it superseded: cut that link first
                connection.execute(t.update().where(t.c.superseded_by.in_(chunk)).values(superseded_by=None))
                count("transcripts", connection.execute(t.delete().where(t.c.id.in_(chunk))))
            for code in plan.forget_codes:
                count("questionnaire_answers", connection.execute(answers.delete().where(answers.c.respondent == code)))
                count("respondent_codes", connection.execute(codes.delete().where(codes.c.code == code)))
            stamp = now()
            for municipality in plan.municipalities:
                connection.execute(stale.delete().where(stale.c.municipality == municipality))
                connection.execute(stale.insert().values(municipality=municipality, reason=reason, marked_at=stamp))
        return removed

    # stale ratings ------------------------------------------------------------------------------
    def stale_ratings(self) -> dict[str, str]:
        """Municipalities whose ratings rest on erased data, with the reason, until the next rating."""
        stale = self._table("stale_ratings")
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(stale.c.municipality, stale.c.reason).order_by(stale.c.municipality))
            return {row.municipality: row.reason for row in rows}

    def clear_stale_ratings(self) -> int:
        """Forget the marks (the ratings were computed again); return how many there were."""
        stale = self._table("stale_ratings")
        with self.transaction() as connection:
            return int(connection.execute(stale.delete()).rowcount or 0)

    def table_names(self) -> list[str]:
        """Every table in the database (for the erasure check in tests and ``codeer forget``)."""
        return sorted(sa.inspect(self.engine).get_table_names())

    def rows_mentioning(self, table: str, needle: str) -> int:
        """Rows of ``table`` with ``needle`` in any text column (for erasure checks)."""
        reflected = self._table(table)
        columns = [c for c in reflected.columns if isinstance(c.type, (sa.String, sa.Text))]
        if not columns:
            return 0
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(reflected).where(
                sa.or_(*(c.contains(needle, autoescape=True) for c in columns)))).scalar_one())
