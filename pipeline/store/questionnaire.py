"""The questionnaire answers' SQL, mixed into :class:`pipeline.store.database.Store`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.store.rows import chunks, now

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.records import QuestionnaireResponses


class QuestionnaireQueries:
    """Questionnaire answers (migration 0002); a mixin of :class:`pipeline.store.database.Store`."""

    engine: Engine

    if TYPE_CHECKING:
        def transaction(self) -> AbstractContextManager[Connection]: ...

    # questionnaires ---------------------------------------------------------------
    @property
    def questionnaire_answers(self) -> sa.Table:
        """The ``questionnaire_answers`` table (migration 0002), reflected on first use."""
        table = getattr(self, "_questionnaire_answers", None)
        if table is None:
            table = sa.Table("questionnaire_answers", sa.MetaData(), autoload_with=self.engine)
            self._questionnaire_answers = table
        return table

    def save_questionnaire(self, responses: QuestionnaireResponses) -> tuple[int, int]:
        """Store the answers of one questionnaire file in one transaction; return ``(added, updated)``.

        One row per respondent and item: re-importing the same file changes nothing; a changed
        answer is updated, and an item the respondent has since left empty is removed (counted
        as updated). Only the respondents in ``responses`` are touched.
        """
        q = self.questionnaire_answers
        compared = ("municipality", "role", "code", "answer", "score")
        wanted: dict[tuple[str, str], dict[str, object]] = {}
        for response in responses.responses:
            for answer in response.answers:
                wanted[(response.respondent, answer.item_id)] = {
                    "file": responses.path, "respondent": response.respondent, "municipality": response.municipality,
                    "role": responses.role.value, "item": answer.item_id, "code": answer.code, "answer": answer.answer,
                    "score": None if answer.score is None else float(answer.score)}
        respondents = sorted({response.respondent for response in responses.responses})
        added = updated = 0
        stamp = now()
        with self.transaction() as connection:
            existing: dict[tuple[str, str], sa.RowMapping] = {}
            for chunk in chunks(respondents, 500):
                query = sa.select(q).where(q.c.respondent.in_(chunk))
                for row in connection.execute(query).mappings():
                    existing[(row["respondent"], row["item"])] = row
            new_rows: list[dict[str, object]] = []
            for key, values in wanted.items():
                stored = existing.get(key)
                if stored is None:
                    new_rows.append({**values, "imported_at": stamp})
                elif any(stored[name] != values[name] for name in compared):
                    connection.execute(q.update().where(q.c.id == stored["id"]).values(**values, imported_at=stamp))
                    updated += 1
            if new_rows:
                connection.execute(q.insert(), new_rows)
                added = len(new_rows)
            stale = [row["id"] for key, row in existing.items() if key not in wanted]
            if stale:
                connection.execute(q.delete().where(q.c.id.in_(stale)))
                updated += len(stale)
        return added, updated

    def questionnaire_frame(self) -> pd.DataFrame:
        """All stored questionnaire answers as a DataFrame.

        Columns ``municipality, code, role, respondent, item, answer, score, file,
        imported_at``; ``code`` and ``score`` are missing (NA) for open and descriptive
        items. The rows with a code and a score are the evidence frame of
        :func:`pipeline.rating.questionnaire_evidence`.
        """
        import pandas as pd

        q = self.questionnaire_answers
        columns = ["municipality", "code", "role", "respondent", "item", "answer", "score", "file", "imported_at"]
        query = sa.select(*(q.c[name] for name in columns)).order_by(q.c.role, q.c.municipality, q.c.respondent, q.c.item)
        with self.engine.connect() as connection:
            rows = [dict(row) for row in connection.execute(query).mappings()]
        frame = pd.DataFrame(rows, columns=columns)
        frame["score"] = pd.to_numeric(frame["score"]).astype(float)
        return frame
