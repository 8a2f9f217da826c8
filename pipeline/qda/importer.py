"""Importing a REFI-QDA project: text sources become transcripts, coded selections annotations.

Placement of a selection on utterances: a selection codes every utterance of which it covers
at least half; a selection that covers no utterance by half codes the one utterance it
overlaps most (a clause selected inside a long sentence). A selection that overlaps no
codable utterance (interviewer text, headings) is reported, never dropped.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.codebook import Codebook
from pipeline.config import InputLimits
from pipeline.corpus import (
    Deidentifier,
    Pseudonymizer,
    deidentify_transcript,
    load_deidentifier,
    store_pseudonymizer,
    INTERVIEWER_LABELS,
    RESPONDENT_LABELS,
    Segmenter,
    SourceMetadata,
    parse_transcript,
    segment_transcript,
)
from pipeline.errors import TranscriptFormatError
from pipeline.hashing import text_hash
from pipeline.qda.archive import MACHINE_USER_PREFIX, QdaProject, QdaSelection, QdaSource, _datetime
from pipeline.qda.directions import DirectionMark, choose_direction
from pipeline.qda.mapping import VARIABLE_NAMES, MappedCode, QdaMapping, _opt, resolve_codes
from pipeline.qda.reader import read_qdpx
from pipeline.records import Annotation, Coding, Role, Speaker, Transcript, Turn, Utterance
from pipeline.store import Store, now

logger = logging.getLogger(__name__)

_CODEER_LINE = re.compile(r"^\[codeer\]\s+(?P<code>[\w-]+)(?P<rest>(?:\s+[\w]+=\S+)*)\s*$", re.MULTILINE)
_LABEL = re.compile(r"^[ \t]*(?:[\[(]?\d{1,2}:\d{2}(?::\d{2})?[\])]?[ \t]*)?([^\W\d_][\w.'’-]*(?: [\w.'’-]+){0,2})[ \t]*:",
                    re.MULTILINE)
_CODE_LIKE = re.compile(r"^(?=(?:.*[A-Z]){2})[A-Za-z]{2,6}$")
_ROLE_WORDS = (("beleid", Role.BELEIDSMEDEWERKER), ("manager", Role.MANAGER), ("teamleider", Role.MANAGER),
               ("leidinggevende", Role.MANAGER), ("regio", Role.REGIO), ("document", Role.DOCUMENT))


@dataclass(frozen=True)
class QdaImportReport:
    """Outcome of :func:`import_qdpx`. Nothing that was left out is left unmentioned.

    ``n_direction_codings``: codings with a direction code (``Positief`` ...);
    ``n_direction_selections``: selections that hold direction codes only (not placed themselves);
    ``n_directed``: codings that got their direction from a direction code;
    ``n_without_direction``: incentive codings no direction reached (stored as ``0``);
    ``conflicts``: selections with both directions on them (their codings get ``0``).
    """

    n_sources: int
    statuses: Mapping[str, int]
    n_selections: int
    n_placed: int
    n_codings_added: int
    n_codings_present: int
    unmapped: tuple[str, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    n_direction_codings: int = 0
    n_direction_selections: int = 0
    n_directed: int = 0
    n_without_direction: int = 0
    conflicts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every source, code and selection was used."""
        return not self.unmapped and not self.problems


def place_selection(start: int, end: int, utterances: Sequence[Utterance]) -> list[tuple[Utterance, int]]:
    """The utterances a selection ``[start, end)`` codes, with the characters it shares with each.

    Every utterance the selection covers at least half of; if there is none, the one
    utterance it overlaps most; none when it overlaps no utterance at all.
    """
    overlaps = [(u, min(end, u.end) - max(start, u.start)) for u in utterances]
    overlaps = [(u, n) for u, n in overlaps if n > 0]
    covered = [(u, n) for u, n in overlaps if 2 * n >= u.end - u.start]
    if covered or not overlaps:
        return covered
    return [max(overlaps, key=lambda item: item[1])]


def _variable(values: Sequence[tuple[str, str]], field_name: str, mapping: QdaMapping) -> str:
    wanted = [mapping.variables[field_name]] if field_name in mapping.variables else list(VARIABLE_NAMES[field_name])
    wanted = [w.casefold() for w in wanted]
    return next((value for name, value in values if name.casefold() in wanted and value), "")


def _source_values(source: QdaSource, project: QdaProject) -> list[tuple[str, str]]:
    values = list(source.variables)
    for case in project.cases:
        if source.guid in case.sources:
            values.extend(case.variables)
    return values


def _source_metadata(source: QdaSource, project: QdaProject, mapping: QdaMapping,
                     pseudonyms: Pseudonymizer) -> tuple[SourceMetadata, list[str]]:
    values = _source_values(source, project)
    notes = []
    municipality = _variable(values, "municipality", mapping)
    respondent = _variable(values, "respondent", mapping)
    if respondent and not _CODE_LIKE.match(respondent):
        # A name, not a code: never store it.
        respondent = pseudonyms.code_for_name(respondent)  # a name: never stored
        notes.append(f"source {source.name!r}: the respondent variable is not a code; stored as {respondent}.")
    role_value = _variable(values, "role", mapping).casefold()
    role = role_value if role_value in {r.value for r in Role} else next(
        (r.value for word, r in _ROLE_WORDS if word in role_value), "") if role_value else ""
    if role_value and not role:
        notes.append(f"source {source.name!r}: role {role_value!r} is not one of "
                     f"{', '.join(r.value for r in Role)}; the role is inferred instead.")
    if not municipality:
        notes.append(f"source {source.name!r}: no municipality variable; stored as 'onbekend'.")
    return SourceMetadata(municipality, respondent, role), notes


def _has_speaker_labels(text: str, aliases: Mapping[str, Speaker]) -> bool:
    known = INTERVIEWER_LABELS | RESPONDENT_LABELS | {alias.casefold() for alias in aliases}
    return sum(1 for match in _LABEL.finditer(text) if match.group(1).strip().casefold() in known) >= 2


def _is_document(text: str, role: str) -> bool:
    first = next((line for line in text.split("\n") if line.strip()), "")
    return role == Role.DOCUMENT.value or first.partition(":")[0].strip().casefold() in ("titel", "soort")


def transcript_from_source(source: QdaSource, source_key: str, archive: str, metadata: SourceMetadata,
                           speaker_aliases: Mapping[str, Speaker] | None = None,
                           pseudonyms: Pseudonymizer | None = None) -> Transcript:
    """A :class:`Transcript` of a QDA text source.

    Text with speaker labels (``Onderzoeker:``/``Respondent:`` ...) and policy documents are
    parsed as :func:`pipeline.corpus.transcripts.parse_transcript` parses files, so a codeer export
    comes back with the same turns; any other text becomes one respondent (or, for role
    ``document``, document) turn per non-empty line.

    Raises
    ------
    TranscriptFormatError
        When labelled text cannot be parsed (for instance an unknown speaker label).
    """
    path = f"{archive}:{source_key}"
    aliases = dict(speaker_aliases or {})
    if _has_speaker_labels(source.text, aliases) or _is_document(source.text, metadata.role):
        return parse_transcript(source.text, path, source=source_key, metadata=metadata, speaker_aliases=aliases,
                                pseudonyms=pseudonyms)
    role = Role(metadata.role) if metadata.role else Role.OTHER
    speaker = Speaker.DOCUMENT if role == Role.DOCUMENT else Speaker.RESPONDENT
    turns: list[Turn] = []
    position = 0
    for number, line in enumerate(source.text.split("\n")):
        stripped = line.strip()
        if stripped:
            start = position + line.index(stripped[0])
            turns.append(Turn(len(turns), speaker, "alinea", start, start + len(stripped), number + 1))
        position += len(line) + 1
    if not turns:
        raise TranscriptFormatError(path, "the source holds no text")
    respondent = metadata.respondent or (pseudonyms or Pseudonymizer.ephemeral()).code_for_source(source_key)
    return Transcript(source=source_key, path=path, content_hash=text_hash(source.text), text=source.text,
                      municipality=metadata.municipality or "onbekend", respondent=respondent, role=role,
                      turns=tuple(turns))


def _description_codings(description: str) -> dict[str, dict[str, str]]:
    return {m.group("code"): dict(re.findall(r"(\w+)=(\S+)", m.group("rest")))
            for m in _CODEER_LINE.finditer(description)}


def import_qdpx(
    path: Path | str,
    store: Store,
    segmenter: Segmenter,
    codebook: Codebook,
    mapping: QdaMapping | None = None,
    *,
    run_id: int | None = None,
    limits: InputLimits | None = None,
    deidentifier: Deidentifier | None = None,
    pseudonyms: Pseudonymizer | None = None,
) -> QdaImportReport:
    """Import a REFI-QDA project: its text sources as transcripts, its codings as annotations.

    Sources are segmented as usual and stored (one transaction each, like ``codeer ingest``);
    selections become annotations (origin ``import``, annotator = the REFI user) on the
    utterances they cover (see :func:`place_selection`), in one transaction at the end.
    Codings by codeer's model users (``codeer model ...``) are not human codings and are
    skipped. Importing the same archive twice adds nothing.

    A coding's direction comes from, in this order: a mapping entry with a direction (a child
    code ``Topic::Negatief``), the direction codes (``Positief``/``Negatief`` mapped as
    ``{direction: '+'}``, or codeer's own) on the same or an overlapping selection (see
    :mod:`pipeline.qda.directions`), and the ``[codeer]`` line of a codeer export's description
    (the code wins: it is what a researcher sees and may have changed). Both
    directions on one selection are reported as a conflict; incentive codings no direction
    reaches are counted.

    Parameters
    ----------
    path
        The ``.qdpx`` archive.
    store, segmenter, codebook
        Where to store, how to segment, and the codebook the mapping targets.
    mapping
        From :func:`load_qda_mapping`; without one, only codes exported by codeer are recognised.
    limits
        Limits on the archive (see :func:`read_qdpx`).
    deidentifier, pseudonyms
        De-identification and the respondent code registry, as for ``codeer ingest`` (defaults:
        deduce with the packaged allow-list; the registry of ``store``). Source texts are
        de-identified before they are stored and the selections moved along with the text.

    Returns
    -------
    QdaImportReport
        Counts, and every code that could not be mapped and every selection or source that
        could not be placed or read, with the reason.

    Raises
    ------
    QdaFormatError
        When the archive itself is corrupt or inconsistent (nothing is stored then).
    """
    project = read_qdpx(path, limits)
    mapping = mapping or QdaMapping()
    deidentifier = deidentifier or load_deidentifier()
    pseudonyms = pseudonyms or store_pseudonymizer(store)
    targets, unused = resolve_codes(project.codes, mapping, codebook)
    codes_by_guid = {code.guid: code for code in project.codes}
    problems = list(project.skipped)
    notes = [f"mapping key {key!r} matches no code in the archive." for key in unused]
    statuses: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    # (utterance id, annotator) -> code -> (overlap, coding, created_at)
    chosen: dict[tuple[str, str], dict[str, tuple[int, Coding, str]]] = defaultdict(dict)
    context: dict[str, tuple[Utterance, Transcript]] = {}
    n_selections = n_placed = n_machine = n_ignored = 0
    n_direction_codings = n_direction_selections = n_directed = n_without_direction = 0
    conflicts: set[str] = set()
    used_marks: set[str] = set()
    all_marks: set[str] = set()
    key_counts = Counter(source.name for source in project.sources)
    # the project's municipalities are never taken for names (as the metadata's for codeer ingest)
    places = sorted({_variable(_source_values(source, project), "municipality", mapping) for source in project.sources}
                    - {""})
    for source in project.sources:
        key = source.name if key_counts[source.name] == 1 else f"{source.name} [{source.guid[:8]}]"
        notes.extend(source.notes)
        n_selections += len(source.selections)
        if source.n_source_codings:
            problems.append(f"source {key!r}: {source.n_source_codings} coding(s) of the whole source (no selection) "
                            "are left out; codeer codes utterances.")
        if not source.text.strip():
            problems.append(f"source {key!r}: empty text; left out with its {len(source.selections)} selection(s).")
            continue
        metadata, metadata_notes = _source_metadata(source, project, mapping, pseudonyms)
        notes.extend(metadata_notes)
        try:
            parsed = transcript_from_source(source, key, Path(project.path).name, metadata, mapping.speakers, pseudonyms)
            deidentified = deidentify_transcript(parsed, deidentifier, allow=places)
            transcript, moved = deidentified.transcript, deidentified.offsets
        except TranscriptFormatError as err:
            statuses["failed"] += 1
            problems.append(f"source {key!r}: {err} Its {len(source.selections)} selection(s) are not placed.")
            continue
        status = store.save_transcript(transcript, segment_transcript(transcript, segmenter), run_id=run_id,
                                       segmenter=segmenter.name)
        statuses[status] += 1
        utterances = list(store.iter_utterances(transcript.transcript_id))
        marks = _direction_marks(source, project, targets)
        all_marks.update(mark.selection for mark in marks)
        for selection in source.selections:
            lines = _description_codings(selection.description)
            found: list[tuple[str, MappedCode, str]] = []
            own_directions: list[str] = []
            for qda_coding in selection.codings:
                annotator = _annotator(qda_coding.user, selection, source, project)
                if annotator.startswith(MACHINE_USER_PREFIX):
                    n_machine += 1
                    continue
                if qda_coding.code not in targets:
                    unmapped[qda_coding.code] += 1
                    continue
                target = targets[qda_coding.code]
                if target is None:
                    n_ignored += 1
                elif target.is_direction:
                    own_directions.append(str(target.direction))
                    n_direction_codings += 1
                else:
                    created = _datetime(qda_coding.created_at or selection.created_at) or now()
                    found.append((annotator or "qda-import", target, created))
            codings: list[tuple[str, Coding, str]] = []
            n_from_marks = n_undirected = 0
            for annotator, target, created in found:
                line = lines.get(target.code, {})
                direction = target.direction
                if direction is None:
                    # Direction codes before the [codeer] line: the code is what a researcher sees and edits.
                    choice = choose_direction(selection.guid, selection.start, selection.end, annotator,
                                              own_directions, marks)
                    used_marks.update(choice.marks)
                    if choice.conflict:
                        where = "on the same selection" if own_directions else "on selections overlapping it"
                        conflicts.add(f"source {key!r}, selection {selection.guid} [{selection.start}:"
                                      f"{selection.end}]: direction codes {' and '.join(choice.conflict)} {where}; "
                                      "its codings get direction 0 (mixed). Keep one direction code there, or "
                                      "split the selection.")
                    direction = choice.direction
                    n_from_marks += direction is not None
                direction = direction or _opt(line.get("direction"))
                try:
                    coding = Coding(target.code, direction or "0", target.facet or _opt(line.get("facet")))
                except ValueError as err:
                    problems.append(f"source {key!r}, selection {selection.guid}: {err}; coding left out.")
                    continue
                codings.append((annotator, coding, created))
                n_undirected += direction is None and codebook[target.code].kind == "incentive"
            n_direction_selections += bool(own_directions) and not found
            if not codings:
                continue
            label = f"source {key!r}, selection {selection.guid} [{selection.start}:{selection.end}] " \
                    f"({', '.join(sorted({c.code for _, c, _ in codings}))})"
            if selection.verified is False:
                problems.append(f"{label}: the text at its offsets does not match its name (the source's other "
                                "selections do), so the offsets are off; not imported.")
                continue
            placed = place_selection(moved(selection.start), moved(selection.end), utterances)
            if not placed:
                problems.append(f"{label}: lies outside every codable utterance (interviewer text or a heading); "
                                "not imported.")
                continue
            n_placed += 1
            n_directed += n_from_marks
            n_without_direction += n_undirected
            for utterance, overlap in placed:
                context[utterance.utterance_id] = (utterance, transcript)
                for annotator, coding, created in codings:
                    held = chosen[(utterance.utterance_id, annotator)].get(coding.code)
                    if held is not None and (held[1].direction, held[1].facet) != (coding.direction, coding.facet):
                        problems.append(f"{label}: {annotator!r} coded {coding.code!r} on utterance "
                                        f"{utterance.utterance_id} twice with different directions; "
                                        "the selection covering more of it wins.")
                    if held is None or overlap > held[0]:
                        chosen[(utterance.utterance_id, annotator)][coding.code] = (overlap, coding, created)
    annotations = []
    for (utterance_id, annotator), by_code in chosen.items():
        utterance, transcript = context[utterance_id]
        annotations.append(Annotation(
            utterance_id=utterance_id, source_file=transcript.source, content_hash=transcript.content_hash,
            start=utterance.start, end=utterance.end, text=utterance.text,
            codings=tuple(coding for _, coding, _ in by_code.values()), annotator=annotator,
            created_at=min(created for _, _, created in by_code.values()), codebook_version=codebook.version,
            transcript_id=transcript.transcript_id, municipality=utterance.municipality,
            respondent=utterance.respondent, role=utterance.role.value, question=utterance.question, origin="import"))
    added, present = store.add_annotations(annotations)
    if n_machine:
        notes.append(f"{n_machine} coding(s) by codeer models were skipped: they are predictions, not human codings.")
    if all_marks - used_marks:
        notes.append(f"{len(all_marks - used_marks)} selection(s) with a direction code have no code of the same "
                     "user on or overlapping them; their direction is not used.")
    if n_without_direction:
        directions_coded = n_direction_codings or any(t is not None and t.direction for t in targets.values())
        notes.append(f"{n_without_direction} incentive coding(s) have no direction code on or overlapping their "
                     "selection; stored with direction 0." if directions_coded else
                     f"{n_without_direction} incentive coding(s) have no direction: the project has no direction "
                     "codes the mapping knows of, so all are stored with direction 0. Where direction is coded "
                     "with codes such as 'Positief'/'Negatief', map them as {direction: '+'} / {direction: '-'}.")
    if n_ignored:
        notes.append(f"{n_ignored} coding(s) on codes mapped to null were ignored, as the mapping says.")
    unmapped_lines = tuple(
        f"code {codes_by_guid[guid].full_name!r} ({guid}): {n} coding(s) not imported, the code is not mapped. "
        "Map it in the mapping file, or set it to null to ignore it." for guid, n in sorted(unmapped.items()))
    logger.info("%s: %d source(s), %d coding(s) added", path, len(project.sources), added)
    return QdaImportReport(len(project.sources), dict(statuses), n_selections, n_placed, added, present,
                           unmapped_lines, tuple(problems), tuple(notes), n_direction_codings,
                           n_direction_selections, n_directed,
                           n_without_direction, tuple(sorted(conflicts)))


def _annotator(user: str | None, selection: QdaSelection, source: QdaSource, project: QdaProject) -> str:
    """The name of the user of a coding (its own, else the selection's, else the source's)."""
    guid = user or selection.user or source.user
    return project.users.get(guid, "") if guid else ""


def _direction_marks(source: QdaSource, project: QdaProject,
                     targets: Mapping[str, MappedCode | None]) -> list[DirectionMark]:
    """The direction codes human users put on the source's selections (not on those with offsets off)."""
    marks = []
    for selection in source.selections:
        if selection.verified is False:
            continue
        for qda_coding in selection.codings:
            target = targets.get(qda_coding.code)
            annotator = _annotator(qda_coding.user, selection, source, project)
            if target is not None and target.is_direction and not annotator.startswith(MACHINE_USER_PREFIX):
                marks.append(DirectionMark(selection.guid, selection.start, selection.end, str(target.direction),
                                           annotator or "qda-import"))
    return marks
