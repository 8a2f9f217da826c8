"""Label Studio exchange: open review items out as tasks with predictions, annotations back in.

Codes and directions travel as a two-level ``Taxonomy`` (code, then ``+``/``-``/``0``), so a
task's result is ``{"taxonomy": [["tijd_evaluatie", "-"], ["analyse", "+"]]}``. A code chosen
without a direction counts as ``0``. The labelling configuration comes with the export
(:func:`label_config`); paste it into the Label Studio project before importing the tasks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import quoteattr

from pipeline.codebook import Codebook
from pipeline.errors import CodeerError, ReviewInputError
from pipeline.records import Coding, ReviewStatus
from pipeline.review import queue as review
from pipeline.store import Store

__all__ = ["label_config", "export_label_studio", "import_label_studio", "LabelStudioImport"]

FROM_NAME = "codes"
TO_NAME = "text"


def label_config(codebook: Codebook) -> str:
    """The Label Studio labelling configuration (XML) for a codebook's codable codes."""
    lines = ["<View>", '  <Header value="$respondent · $municipality"/>', '  <Text name="question" value="$question"/>',
             f'  <Text name="{TO_NAME}" value="$text"/>', f'  <Taxonomy name="{FROM_NAME}" toName="{TO_NAME}">']
    for code_id in codebook.codable:
        code = codebook[code_id]
        lines.append(f"    <Choice value={quoteattr(code_id)} hint={quoteattr(code.label_nl)}>")
        lines.extend(f"      <Choice value={quoteattr(direction)}/>" for direction in ("+", "-", "0"))
        lines.append("    </Choice>")
    lines += ["  </Taxonomy>", "</View>", ""]
    return "\n".join(lines)


def export_label_studio(store: Store, path: Path, codebook: Codebook) -> int:
    """Write the open review items as Label Studio tasks (JSON) with the model's predictions.

    Also writes the labelling configuration beside it (``<name>.label_config.xml``).
    Returns the number of tasks.
    """
    items = store.list_review_items([ReviewStatus.PENDING, ReviewStatus.CLAIMED])
    utterances = store.utterances_by_id(item.utterance_id for item in items)
    by_model: dict[str, list[str]] = {}
    for item in items:
        by_model.setdefault(item.model_id, []).append(item.utterance_id)
    predictions = {(model_id, uid): rows for model_id, ids in by_model.items()
                   for uid, rows in store.predictions_by_utterance(model_id, ids).items()}
    tasks = []
    for item in items:
        utterance = utterances.get(item.utterance_id)
        if utterance is None:
            continue
        rows = predictions.get((item.model_id, item.utterance_id), [])
        chosen = [p for p in rows if p.predicted]
        tasks.append({
            "data": {"item_id": item.item_id, "utterance_id": item.utterance_id, "model_id": item.model_id,
                     "text": utterance.text, "question": utterance.question, "municipality": utterance.municipality,
                     "respondent": utterance.respondent, "priority": item.priority, "reasons": list(item.reasons),
                     "probabilities": {p.code: round(p.probability, 4) for p in rows}},
            "predictions": [{
                "model_version": item.model_id,
                "score": round(1.0 - item.uncertainty, 4),
                "result": [{
                    "id": item.item_id[:10], "from_name": FROM_NAME, "to_name": TO_NAME, "type": "taxonomy",
                    "value": {"taxonomy": [[p.code, p.direction or "0"] for p in chosen]},
                    "score": round(sum(p.probability for p in chosen) / len(chosen), 4) if chosen else 0.0,
                }] if chosen else [],
            }],
        })
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    path.with_name(path.stem + ".label_config.xml").write_text(label_config(codebook), encoding="utf-8")
    return len(tasks)


@dataclass(frozen=True, slots=True)
class LabelStudioImport:
    """What an import of Label Studio annotations did."""

    n_tasks: int
    n_accepted: int
    n_corrected: int
    n_skipped: int
    problems: tuple[str, ...]


def _codings_of(result: list[dict[str, object]], suggested: dict[str, Coding]) -> list[Coding]:
    codings: dict[str, Coding] = {}
    for entry in result:
        if entry.get("from_name") != FROM_NAME:
            continue
        value = entry.get("value")
        paths = value.get("taxonomy", []) if isinstance(value, dict) else []
        for path in paths:
            if not isinstance(path, list) or not path:
                continue
            code = str(path[0])
            direction = str(path[1]) if len(path) > 1 else "0"
            hint = suggested.get(code)
            codings[code] = Coding(code, direction, hint.facet if hint else None)
    return list(codings.values())


def _completed_by(annotation: dict[str, object]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return f"label-studio:{who}" if who not in (None, "") else "label-studio"


def import_label_studio(store: Store, path: Path, codebook: Codebook, *, annotator: str | None = None,
                        now: datetime | None = None) -> LabelStudioImport:
    """Record the newest Label Studio annotation of each exported task as a review decision.

    Same codes and directions as the model: accepted; others: corrected; a cancelled
    (skipped) annotation: skipped. Each is one transaction with the usual version check, so
    items decided in codeer meanwhile are reported in ``problems`` and left alone.

    Raises
    ------
    ReviewInputError
        The file is not a Label Studio JSON export (a list of tasks).
    """
    try:
        tasks = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise ReviewInputError(f"{path}: not valid JSON ({err.msg}, line {err.lineno}). "
                               "Export the project from Label Studio as JSON.") from err
    if not isinstance(tasks, list):
        raise ReviewInputError(f"{path}: expected a JSON list of tasks (Label Studio 'JSON' export), "
                               f"got a {type(tasks).__name__}.")
    counts = {"accept": 0, "correct": 0, "skip": 0}
    problems: list[str] = []
    for number, task in enumerate(tasks, 1):
        data = task.get("data", {}) if isinstance(task, dict) else {}
        item_id = data.get("item_id") if isinstance(data, dict) else None
        label = f"{path.name}, task {number}" + (f" (item {str(item_id)[:12]})" if item_id else "")
        annotations = [a for a in task.get("annotations", []) if isinstance(a, dict)] if isinstance(task, dict) else []
        if not item_id or not annotations:
            if not item_id:
                problems.append(f"{label}: no data.item_id; only tasks exported by codeer can be imported.")
            continue
        latest = max(annotations, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))
        who = annotator or _completed_by(latest)
        note = f"imported from Label Studio ({path.name}, task {task.get('id', number)})"
        try:
            item = review.get_item(store, str(item_id))
            if latest.get("was_cancelled"):
                review.skip(store, item.item_id, who, version=item.version, now=now)
                counts["skip"] += 1
                continue
            rows = store.predictions_by_utterance(item.model_id, [item.utterance_id]).get(item.utterance_id, [])
            suggested = {c.code: c for c in review.suggested_codings(rows)}
            codings = _codings_of(list(latest.get("result") or []), suggested)
            if {(c.code, c.direction) for c in codings} == {(c.code, c.direction) for c in suggested.values()}:
                review.accept(store, item.item_id, who, version=item.version, codebook=codebook, now=now)
                counts["accept"] += 1
            else:
                review.correct(store, item.item_id, who, codings, version=item.version, codebook=codebook, now=now,
                               note=note)
                counts["correct"] += 1
        except (CodeerError, ValueError) as err:
            problems.append(f"{label}: {err}")
    return LabelStudioImport(len(tasks), counts["accept"], counts["correct"], counts["skip"], tuple(problems))
