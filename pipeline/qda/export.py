"""Exporting codeer's transcripts, codebook and codings as a REFI-QDA project (``.qdpx``).

Sources are written as UTF-8 with LF line ends and no BOM, so a selection is exactly
``text[start:end]``; each is checked against its utterance before it is written. GUIDs are
UUID5s of codeer ids (code id, source key, utterance id, user), so a re-export updates rather
than duplicates in the researcher's program. Direction and facet have no field in the
standard: they go into the selection's ``<Description>`` as lines
``[codeer] CODE direction=- facet=practice``; machine codings add ``p=`` and ``model=``.
Because QDA programs need not keep descriptions, a human coding's direction is also written as
the thesis coded it: the direction code (``Richting::Positief``/``Negatief``) on the same
selection (issue 18).
"""

from __future__ import annotations

import zipfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from pipeline import __version__
from pipeline.codebook import Codebook
from pipeline.errors import QdaExportError
from pipeline.qda.archive import CODEER_USER, MACHINE_USER_PREFIX, PROJECT_NS, _datetime, _q, _xml_text, qda_guid
from pipeline.qda.codebooks import _add_codes
from pipeline.qda.directions import DIRECTION_CODE_GUIDS
from pipeline.qda.mapping import VARIABLE_NAMES
from pipeline.records import Prediction, Utterance
from pipeline.store import Store, StoredAnnotation

INCLUDE_CHOICES = ("predicted", "reviewed", "all")


@dataclass(frozen=True)
class QdaExportReport:
    """Outcome of :func:`export_qdpx`."""

    path: str
    n_sources: int
    n_selections: int
    n_human_codings: int
    n_machine_codings: int
    users: tuple[str, ...]
    problems: tuple[str, ...] = ()


def _excerpt(text: str, size: int = 60) -> str:
    text = _xml_text(" ".join(text.split()))
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


def export_qdpx(
    store: Store,
    codebook: Codebook,
    out: Path | str,
    *,
    include: str = "all",
    model_ids: Sequence[str] | None = None,
    project_name: str = "codeer",
) -> QdaExportReport:
    """Export the active transcripts, the codebook and the codings as a REFI-QDA project.

    Sources go to ``sources/<GUID>.txt`` as UTF-8 with LF line ends; cases are the
    municipalities, with ``municipality``, ``respondent`` and ``role`` as variables (on the
    sources too). Human codings are filed under their annotators, machine codings
    (predictions with ``predicted`` set) under one user per model, ``codeer model <id>``,
    with probability and direction in the selection's description. One selection per
    utterance and user, exactly on the utterance's offsets, each checked against the text.

    Parameters
    ----------
    include
        ``reviewed``: human codings only (seed, imported and review decisions);
        ``predicted``: machine codings only; ``all`` (default): both.
    model_ids
        The models whose predictions to export (default: every model with predictions).

    Raises
    ------
    QdaExportError
        When a stored utterance does not match its transcript text at its offsets.
    """
    if include not in INCLUDE_CHOICES:
        raise ValueError(f"include must be one of {', '.join(INCLUDE_CHOICES)}, got {include!r}")
    problems: list[str] = []
    human: dict[str, dict[str, dict[str, StoredAnnotation]]] = defaultdict(lambda: defaultdict(dict))
    if include in ("reviewed", "all"):
        for row in store.list_annotations():
            if row.code not in codebook or not codebook[row.code].codable:
                problems.append(f"annotation {row.code!r} by {row.annotator!r} on utterance {row.utterance_id}: "
                                f"not a code of codebook {codebook.version!r}; left out.")
                continue
            held = human[row.utterance_id][row.annotator].get(row.code)
            if held is None or row.created_at >= held.created_at:
                human[row.utterance_id][row.annotator][row.code] = row
    machine: dict[str, dict[str, list[Prediction]]] = defaultdict(lambda: defaultdict(list))
    if include in ("predicted", "all"):
        for model_id in model_ids or store.prediction_model_ids():
            for prediction in store.iter_predictions(model_id, only_predicted=True):
                if prediction.code in codebook:
                    machine[prediction.utterance_id][MACHINE_USER_PREFIX + model_id].append(prediction)
    users = sorted({CODEER_USER} | {a for by_user in human.values() for a in by_user}
                   | {m for by_user in machine.values() for m in by_user})
    user_guids = {name: qda_guid("user", name) for name in users}

    root = etree.Element(_q("Project"), nsmap={None: PROJECT_NS}, name=project_name,
                         origin=f"codeer {__version__}", creatingUserGUID=user_guids[CODEER_USER])
    users_element = etree.SubElement(root, _q("Users"))
    for name in users:
        etree.SubElement(users_element, _q("User"), guid=user_guids[name], name=name)
    _add_codes(etree.SubElement(root, _q("CodeBook")), codebook, PROJECT_NS)
    transcripts = store.list_transcripts()
    variables = {name: qda_guid("variable", name) for name in VARIABLE_NAMES}
    sources_element = cases_element = None
    if transcripts:
        variables_element = etree.SubElement(root, _q("Variables"))
        for name, guid in variables.items():
            etree.SubElement(variables_element, _q("Variable"), guid=guid, name=name, typeOfVariable="Text")
        cases_element = etree.SubElement(root, _q("Cases"))
        by_municipality: dict[str, list[str]] = defaultdict(list)
        for t in transcripts:
            by_municipality[t.municipality].append(qda_guid("source", t.source))
        for municipality in sorted(by_municipality):
            case = etree.SubElement(cases_element, _q("Case"), guid=qda_guid("case", municipality), name=municipality)
            _variable_value(case, variables["municipality"], municipality)
            for guid in by_municipality[municipality]:
                etree.SubElement(case, _q("SourceRef"), targetGUID=guid)
        sources_element = etree.SubElement(root, _q("Sources"))
    files: dict[str, bytes] = {}
    n_selections = n_human = n_machine = 0
    for t in transcripts:
        text, _, _ = store.transcript_text(t.transcript_id)
        guid = qda_guid("source", t.source)
        source = etree.SubElement(sources_element, _q("TextSource"), guid=guid, name=t.source,
                                  plainTextPath=f"internal://{guid}.txt", creatingUser=user_guids[CODEER_USER])
        for utterance in store.iter_utterances(t.transcript_id):
            if text[utterance.start:utterance.end] != utterance.text or "\r" in utterance.text:
                raise QdaExportError(
                    f"source {t.source!r}, utterance {utterance.utterance_id} [{utterance.start}:{utterance.end}]: "
                    "the stored utterance differs from the transcript text at its offsets, so its codings would "
                    "land on other words. Re-ingest the source and export again.")
            for annotator, by_code in sorted(human.get(utterance.utterance_id, {}).items()):
                groups = _direction_groups([by_code[code] for code in sorted(by_code)])
                for direction, rows in groups.items():
                    lines = [f"[codeer] {r.code} direction={r.direction}" + (f" facet={r.facet}" if r.facet else "")
                             for r in rows]
                    codings = [(qda_guid("code", r.code), r.code, r.created_at) for r in rows]
                    # '0' is written where it tells something: on incentives, or beside another direction
                    if direction != "0" or len(groups) > 1 or any(codebook[r.code].kind == "incentive" for r in rows):
                        codings.append((DIRECTION_CODE_GUIDS[direction], f"direction{direction}",
                                        min(r.created_at for r in rows)))
                    _add_selection(source, utterance, annotator, user_guids[annotator], lines, codings,
                                   suffix=f":{direction}" if len(groups) > 1 else "")
                    n_selections, n_human = n_selections + 1, n_human + len(rows)
            for user, predictions in sorted(machine.get(utterance.utterance_id, {}).items()):
                predictions = sorted(predictions, key=lambda p: p.code)
                lines = [_prediction_line(p) for p in predictions]
                _add_selection(source, utterance, user, user_guids[user], lines,
                               [(qda_guid("code", p.code), p.code, None) for p in predictions])
                n_selections, n_machine = n_selections + 1, n_machine + len(predictions)
        for name in ("municipality", "respondent", "role"):
            _variable_value(source, variables[name], getattr(t, name))
        files[f"sources/{guid}.txt"] = text.encode("utf-8")
    _write_archive(Path(out), etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True), files)
    return QdaExportReport(str(out), len(transcripts), n_selections, n_human, n_machine, tuple(users), tuple(problems))


def _prediction_line(prediction: Prediction) -> str:
    line = f"[codeer] {prediction.code} p={prediction.probability:.3f}"
    if prediction.direction:
        line += f" direction={prediction.direction}"
    if prediction.direction_p is not None:
        line += f" direction_p={prediction.direction_p:.3f}"
    if prediction.facet:
        line += f" facet={prediction.facet}"
    return line + " model=" + "_".join(prediction.model_id.split())


def _variable_value(parent: etree._Element, variable_guid: str, value: str) -> None:
    element = etree.SubElement(parent, _q("VariableValue"))
    etree.SubElement(element, _q("VariableRef"), targetGUID=variable_guid)
    etree.SubElement(element, _q("TextValue")).text = _xml_text(str(value))


def _direction_groups(rows: Sequence[StoredAnnotation]) -> dict[str, list[StoredAnnotation]]:
    """One user's codings of one utterance, by direction.

    Codings of different directions go on separate selections, each with its own direction code
    (``0`` as ``Gemengd``), so that on import no direction code lands on another's codings.
    Context codes of direction ``0`` alone get no direction code; incentives always do.
    """
    groups: dict[str, list[StoredAnnotation]] = defaultdict(list)
    for row in rows:
        groups[row.direction if row.direction in DIRECTION_CODE_GUIDS else "0"].append(row)
    return dict(sorted(groups.items()))


def _add_selection(source: etree._Element, utterance: Utterance, user: str, user_guid: str, lines: list[str],
                   codings: Iterable[tuple[str, str, str | None]], suffix: str = "") -> None:
    """A selection on the utterance's offsets with ``codings`` (code GUID, key part, created at)."""
    key = f"{utterance.utterance_id}:{user}{suffix}"
    attributes = {"guid": qda_guid("selection", key), "name": _excerpt(utterance.text),
                  "startPosition": str(utterance.start), "endPosition": str(utterance.end), "creatingUser": user_guid}
    selection = etree.SubElement(source, _q("PlainTextSelection"), attributes)
    etree.SubElement(selection, _q("Description")).text = "\n".join(lines)
    for code_guid, code, created in codings:
        coding = etree.SubElement(selection, _q("Coding"), guid=qda_guid("coding", f"{key}:{code}"), creatingUser=user_guid)
        if _datetime(created):
            coding.set("creationDateTime", _datetime(created))
        etree.SubElement(coding, _q("CodeRef"), targetGUID=code_guid)


def _write_archive(out: Path, project: bytes, files: Mapping[str, bytes]) -> None:
    """Write the ZIP atomically, with fixed timestamps so the same data gives the same bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, data in [("project.qde", project), *sorted(files.items())]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    partial.replace(out)
