"""REFI-QDA exchange (issue 9): export validates against the standard's schemas, the demo
corpus round-trips, real MAXQDA and ATLAS.ti exports import, offsets land on the right words
(CRLF, non-ASCII, decomposed accents), and broken archives fail naming the element."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from pipeline.cli import cli
from pipeline.codebook import load_codebook, load_codebook_file
from pipeline.corpus.annotations import import_annotations, read_annotations
from pipeline.corpus.ingest import ingest_paths
from pipeline.errors import QdaFormatError, QdaMappingError
from pipeline.qda import (
    codebook_from_qda,
    codebook_yaml,
    export_qdc,
    export_qdpx,
    import_qdpx,
    load_qda_mapping,
    place_selection,
    qda_guid,
    read_qdc,
    read_qdpx,
    suggest_mapping,
)
from pipeline.records import Annotation, Coding, Prediction, Role, Speaker, Utterance
from pipeline.store.database import open_store
from pipeline.store.rows import now
from pipeline.resources import seed_dir

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = Path(__file__).parent / "data" / "refi-qda"
NS = {"q": "urn:QDA-XML:project:1.0"}


def _refi_qda_folder() -> Path | None:
    """``shared/refi-qda`` in the repository root or one of its ancestors (the worktree layout)."""
    for folder in (ROOT, *ROOT.parents):
        if (folder / "shared" / "refi-qda" / "samples").is_dir():
            return folder / "shared" / "refi-qda"
    return None


REFI_QDA = _refi_qda_folder()
needs_samples = pytest.mark.skipif(
    REFI_QDA is None, reason="the third-party REFI-QDA samples (shared/refi-qda/samples beside the repository) "
                             "are not on this machine; they are not shipped with codeer")


def _validate(xml: bytes, schema: str) -> etree._Element:
    document = etree.fromstring(xml)
    validator = etree.XMLSchema(etree.parse(str(SCHEMAS / schema)))
    assert validator.validate(document), validator.error_log
    return document


def _project_xml(archive: Path) -> bytes:
    with zipfile.ZipFile(archive) as z:
        return z.read("project.qde")


def _write_qdpx(path: Path, qde: str, files: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("project.qde", qde.encode("utf-8"))
        for name, data in (files or {}).items():
            z.writestr(name, data)
    return path


def _snapshot(store) -> tuple[list, list, list]:
    transcripts = sorted((t.source, t.content_hash, t.municipality, t.respondent, t.role, t.kind, t.n_utterances)
                         for t in store.list_transcripts())
    utterances = [(u.utterance_id, u.transcript_id, u.turn, u.position, u.speaker, u.start, u.end, u.text)
                  for u in store.iter_utterances()]
    annotations = sorted((a.utterance_id, a.code, a.direction, a.facet, a.annotator) for a in store.list_annotations())
    return transcripts, utterances, annotations


# ---------------------------------------------------------------- round trip (Must show 1)
def test_qda_demo_corpus_round_trips_through_a_valid_qdpx(fresh_store, segmenter, tmp_path: Path) -> None:
    book = load_codebook()
    assert not ingest_paths([ROOT / "data" / "demo"], fresh_store, segmenter).failed
    assert import_annotations(read_annotations([seed_dir()], book), fresh_store).problems == ()
    out = tmp_path / "demo.qdpx"
    report = export_qdpx(fresh_store, book, out)
    assert report.n_sources == 28 and report.n_machine_codings == 0 and report.problems == ()
    document = _validate(_project_xml(out), "Project-mrt2019.xsd")
    # every selection in the archive is exactly its utterance's text in the archived source file
    with zipfile.ZipFile(out) as z:
        texts = {n: z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("sources/")}
    assert all("\r" not in t and not t.startswith("\ufeff") for t in texts.values())
    by_text = {u.utterance_id: u.text for u in fresh_store.iter_utterances()}
    n_checked = 0
    for source in document.iterfind(".//q:TextSource", NS):
        text = texts["sources/" + source.get("plainTextPath").removeprefix("internal://")]
        for selection in source.iterfind("q:PlainTextSelection", NS):
            fragment = text[int(selection.get("startPosition")):int(selection.get("endPosition"))]
            assert fragment in by_text.values() and fragment.startswith(selection.get("name").rstrip("…"))
            n_checked += 1
    assert n_checked == report.n_selections > 1000
    assert export_qdpx(fresh_store, book, tmp_path / "again.qdpx") and \
        (tmp_path / "again.qdpx").read_bytes() == out.read_bytes()  # stable GUIDs, same bytes

    empty = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        result = import_qdpx(out, empty, segmenter, book)
        assert result.ok, (result.unmapped, result.problems)
        assert result.statuses == {"new": 28} and result.n_placed == result.n_selections
        assert _snapshot(empty) == _snapshot(fresh_store)
        assert {a.origin for a in empty.list_annotations()} == {"import"}
        again = import_qdpx(out, empty, segmenter, book)
        assert again.statuses == {"unchanged": 28} and again.n_codings_added == 0
    finally:
        empty.close()


# ---------------------------------------------------------------- export details
def test_qda_export_files_machine_codings_under_model_users(any_store, segmenter, interview_file: Path,
                                                            tmp_path: Path) -> None:
    fresh_store = any_store  # SQLite, and PostgreSQL where CODEER_TEST_PG is set
    book = load_codebook()
    ingest_paths([interview_file], fresh_store, segmenter)
    first, second, third = list(fresh_store.iter_utterances())[:3]
    fresh_store.add_annotations([Annotation(first.utterance_id, "BQ.txt", "", first.start, first.end, first.text,
                                            (Coding("teamomschrijving", "0"),), "annotator-1", now(), book.version)])
    fresh_store.save_predictions([
        Prediction(second.utterance_id, "m-2026", "tijd_evaluatie", 0.91, True, "-", 0.8, "practice"),
        Prediction(third.utterance_id, "m-2026", "analyse", 0.2, False, "+", 0.5, None),
    ])
    out = tmp_path / "all.qdpx"
    report = export_qdpx(fresh_store, book, out)
    assert (report.n_human_codings, report.n_machine_codings) == (1, 1)
    document = _validate(_project_xml(out), "Project-mrt2019.xsd")
    users = {u.get("name"): u.get("guid") for u in document.iterfind(".//q:User", NS)}
    assert set(users) == {"codeer", "annotator-1", "codeer model m-2026"}
    machine = [s for s in document.iterfind(".//q:PlainTextSelection", NS)
               if s.get("creatingUser") == users["codeer model m-2026"]]
    assert len(machine) == 1 and int(machine[0].get("startPosition")) == second.start
    description = machine[0].findtext("q:Description", namespaces=NS)
    assert "tijd_evaluatie p=0.910 direction=- direction_p=0.800 facet=practice model=m-2026" in description
    coding = machine[0].find("q:Coding", NS)
    assert coding.find("q:CodeRef", NS).get("targetGUID") == qda_guid("code", "tijd_evaluatie")
    case = document.find(".//q:Case", NS)
    assert case.get("name") == "Testerveen" and len(case.findall("q:SourceRef", NS)) == 1
    code = document.find(".//q:Code[@name='Psychologische veiligheid']", NS)
    assert code.get("color") == book["psychologische_veiligheid"].color and code.get("isCodable") == "true"
    assert document.find(".//q:Code[@name='Ondersteunende leeromgeving']", NS).get("isCodable") == "false"

    reviewed = export_qdpx(fresh_store, book, tmp_path / "r.qdpx", include="reviewed")
    predicted = export_qdpx(fresh_store, book, tmp_path / "p.qdpx", include="predicted")
    assert "codeer model m-2026" not in reviewed.users and "annotator-1" not in predicted.users
    assert (reviewed.n_machine_codings, predicted.n_human_codings) == (0, 0)

    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        result = import_qdpx(out, other, segmenter, book)
        assert result.ok and any("codeer models were skipped" in note for note in result.notes)
        assert [(a.code, a.annotator) for a in other.list_annotations()] == [("teamomschrijving", "annotator-1")]
    finally:
        other.close()


def test_qda_codebook_qdc_round_trip(tmp_path: Path) -> None:
    book = load_codebook("scriptie2017")
    out = tmp_path / "scriptie2017.qdc"
    assert export_qdc(book, out) == len(book.codes)
    document = _validate(out.read_bytes(), "Codebook.xsd")
    # the codebook's codes, then the direction folder 'Richting' with Positief, Negatief, Gemengd (issue 18)
    names = [c.get("name") for c in document.findall(".//{urn:QDA-XML:codebook:1.0}Code")]
    assert len(names) == len(book.codes) + 4 and names[-4:] == ["Richting", "Positief", "Negatief", "Gemengd"]
    back = codebook_from_qda(read_qdc(out), "scriptie2017")  # the direction codes are no topics
    fields = ("id", "parent", "kind", "rated", "label_nl", "label_en", "color", "definition_nl", "definition_en",
              "include", "exclude")
    assert [tuple(getattr(c, f) for f in fields) for c in back.codes] == \
        [tuple(getattr(c, f) for f in fields) for c in book.codes]
    written = tmp_path / "kopie.yaml"
    written.write_text(codebook_yaml(book), encoding="utf-8")
    assert load_codebook_file(written).codes == book.codes


# ---------------------------------------------------------------- real samples (Must show 2)
@needs_samples
def test_qda_maxqda_sample_imports_codebook_and_ten_sources(fresh_store, segmenter) -> None:
    archive = REFI_QDA / "samples" / "maxqda24-codebook-and-sources.qdpx"
    project = read_qdpx(archive)
    assert project.origin.startswith("MAXQDA") and len(project.sources) == 10 and project.skipped == ()
    roots = [c for c in project.codes if c.parent is None]
    children = [c for c in project.codes if c.parent is not None]
    assert len(roots) >= 10 and len(children) > 200
    by_guid = {c.guid: c for c in project.codes}
    assert all(c.path[:-1] == by_guid[c.parent].path for c in children)
    assert all(c.color and c.color.startswith("#") for c in project.codes)
    assert sum(1 for c in project.codes if c.description) > 0.9 * len(project.codes)
    assert "Additional Themes and Ideas::THEME - Affordances" in {c.full_name for c in project.codes}
    report = import_qdpx(archive, fresh_store, segmenter, load_codebook())
    assert report.ok, report.problems
    assert report.statuses == {"new": 10}
    stored = fresh_store.list_transcripts()
    assert len(stored) == 10 and all(t.n_utterances > 20 for t in stored)
    book = codebook_from_qda(project.codes, "maxqda-sample")
    assert len(book.codes) == len(project.codes) and len(book.children(None)) == len(roots)


@needs_samples
def test_qda_atlas_sample_codebook_reads_nested_codes() -> None:
    codes = read_qdc(REFI_QDA / "samples" / "atlasti23-codebook-only.qdpx")
    assert [c.path for c in codes] == [("Commits",), ("Commits", "2022-05-10T02:05:59Z 19e4dce"),
                                       ("Commits", "2022-02-11T10:39:25Z cdbfd92")]
    book = codebook_from_qda(codes, "atlas")
    assert [c.parent for c in book.codes] == [None, "commits", "commits"]


# ---------------------------------------------------------------- offsets (Must show 2, second half)
SOURCE_GUID = "0B5E1A54-2C1D-4F6B-9A9E-1D2C3B4A5F60"
USER_GUID = "A1B2C3D4-0000-4000-8000-000000000001"
CODE_WERKDRUK = "C0DE0001-0000-4000-8000-000000000001"
CODE_NEGATIEF = "C0DE0002-0000-4000-8000-000000000002"
CODE_IDEEEN = "C0DE0003-0000-4000-8000-000000000003"
CODE_EIGEN = "C0DE0004-0000-4000-8000-000000000004"
# CRLF line ends, a BOM, precomposed and decomposed (e + U+0308) accents, curly quotes.
RAW = ("\ufeffOnderzoeker: Hoe gaat het met de werkdruk?\r\n\r\n"
       "Respondent: De werkdruk is écht te hoog. We hebben geen tijd om te evalueren, zeker niet in de zomer. "
       "Überhaupt komt reflectie er niet van…\r\n\r\n"
       "Onderzoeker: En nieuwe ideee\u0308n?\r\n\r\n"
       "Respondent: Die worden gewaardeerd, hoor. De teamleider zegt: „probeer het maar”.\r\n")
PHRASES = [  # (phrase as in RAW, code GUID)
    ("De werkdruk is écht te hoog.", CODE_NEGATIEF),
    ("geen tijd om te evalueren", CODE_NEGATIEF),  # a clause inside a sentence
    ("Die worden gewaardeerd, hoor. De", CODE_IDEEEN),  # 1 sentence + 2 of the next one's 40 characters
    ("En nieuwe ideee\u0308n?", CODE_IDEEEN),  # interviewer text: not placed
    ("Überhaupt komt reflectie er niet van…", CODE_EIGEN),  # unmapped code
]


def _crlf_archive(tmp_path: Path, reading: str) -> Path:
    counted = RAW.removeprefix("\ufeff") if reading == "stored" else RAW.removeprefix("\ufeff").replace("\r\n", "\n")
    selections = []
    for number, (phrase, code) in enumerate(PHRASES):
        start = counted.index(phrase)
        name = f"Reference {number + 1}" if reading == "stored" else phrase[:20] + "…"
        selections.append(
            f'<PlainTextSelection guid="5E1E0000-0000-4000-8000-00000000000{number}" name="{name}" '
            f'startPosition="{start}" endPosition="{start + len(phrase)}" creatingUser="{USER_GUID}">'
            f'<Coding guid="C0D10000-0000-4000-8000-00000000000{number}" creatingUser="{USER_GUID}" '
            f'creationDateTime="2025-03-01T10:00:00Z"><CodeRef targetGUID="{code}"/></Coding></PlainTextSelection>')
    qde = f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="werkdruk" origin="NVivo 14">
 <Users><User guid="{USER_GUID}" name="Onderzoeker A"/></Users>
 <CodeBook><Codes>
  <Code guid="{CODE_WERKDRUK}" name="Werkdruk" isCodable="true" color="#FF0000">
   <Code guid="{CODE_NEGATIEF}" name="negatief" isCodable="true"/>
  </Code>
  <Code guid="{CODE_IDEEEN}" name="Nieuwe idee&#235;n" isCodable="true"/>
  <Code guid="{CODE_EIGEN}" name="Eigen observaties" isCodable="true"/>
 </Codes></CodeBook>
 <Variables>
  <Variable guid="7A000000-0000-4000-8000-000000000001" name="Gemeente" typeOfVariable="Text"/>
  <Variable guid="7A000000-0000-4000-8000-000000000002" name="Respondent" typeOfVariable="Text"/>
  <Variable guid="7A000000-0000-4000-8000-000000000003" name="Functie" typeOfVariable="Text"/>
 </Variables>
 <Cases><Case guid="CA5E0000-0000-4000-8000-000000000001" name="Testerveen">
  <VariableValue><VariableRef targetGUID="7A000000-0000-4000-8000-000000000001"/><TextValue>Testerveen</TextValue></VariableValue>
  <SourceRef targetGUID="{SOURCE_GUID}"/>
 </Case></Cases>
 <Sources>
  <TextSource guid="{SOURCE_GUID}" name="BQ werkdruk.docx" plainTextPath="internal://{SOURCE_GUID}.txt"
              richTextPath="internal://{SOURCE_GUID}.docx">
   {''.join(selections)}
   <VariableValue><VariableRef targetGUID="7A000000-0000-4000-8000-000000000002"/><TextValue>BQ</TextValue></VariableValue>
   <VariableValue><VariableRef targetGUID="7A000000-0000-4000-8000-000000000003"/><TextValue>Beleidsmedewerker Jeugd</TextValue></VariableValue>
  </TextSource>
 </Sources>
</Project>"""
    # The capitalised Sources/ folder, as ATLAS.ti writes it.
    return _write_qdpx(tmp_path / f"crlf-{reading}.qdpx", qde, {f"Sources/{SOURCE_GUID}.txt": RAW.encode("utf-8")})


@pytest.mark.parametrize("reading", ["stored", "lf"])
def test_qda_crlf_non_ascii_selections_land_on_the_right_words(fresh_store, segmenter, tmp_path: Path,
                                                                reading: str) -> None:
    book = load_codebook()
    mapping_file = tmp_path / "map.yaml"
    mapping_file.write_text('codebook_version: garvin2008\nvariables:\n  municipality: Gemeente\n  role: Functie\n'
                            'codes:\n  "Werkdruk::negatief": {code: tijd_evaluatie, direction: "-"}\n'
                            '  "Nieuwe ideeën": openheid_nieuwe_ideeen\n  Werkdruk: null\n', encoding="utf-8")
    archive = _crlf_archive(tmp_path, reading)
    report = import_qdpx(archive, fresh_store, segmenter, book, load_qda_mapping(mapping_file, book))

    (transcript,) = fresh_store.list_transcripts()
    text, source, _ = fresh_store.transcript_text(transcript.transcript_id)
    assert source == "BQ werkdruk.docx" and "\r" not in text and "\ufeff" not in text and "ideeën" in text
    assert (transcript.municipality, transcript.respondent, transcript.role) == ("Testerveen", "BQ", "beleidsmedewerker")
    annotated = {(u.text, codings[0].code, codings[0].direction, annotator)
                 for u, codings, annotator, _ in fresh_store.iter_annotated()}
    assert annotated == {
        ("De werkdruk is écht te hoog.", "tijd_evaluatie", "-", "Onderzoeker A"),
        ("We hebben geen tijd om te evalueren, zeker niet in de zomer.", "tijd_evaluatie", "-", "Onderzoeker A"),
        ("Die worden gewaardeerd, hoor.", "openheid_nieuwe_ideeen", "0", "Onderzoeker A"),
    }
    assert len(report.unmapped) == 1 and "Eigen observaties" in report.unmapped[0]
    assert len(report.problems) == 1 and "outside every codable utterance" in report.problems[0]
    expected = "the text as stored (CRLF = 2" if reading == "stored" else "text with LF line ends"
    assert any(expected in note for note in report.notes), report.notes
    assert not report.ok


def test_qda_docx_source_without_plain_text_twin(fresh_store, segmenter, tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    for paragraph in ("Onderzoeker: Hoe is de sfeer?", "Respondent: Iedereen durft fouten te melden.",
                      "Onderzoeker: Dank u."):
        document.add_paragraph(paragraph)
    buffer = tmp_path / "bron.docx"
    document.save(buffer)
    text = "Onderzoeker: Hoe is de sfeer?\nRespondent: Iedereen durft fouten te melden.\nOnderzoeker: Dank u."
    start = text.index("Iedereen")
    qde = (f'<Project xmlns="urn:QDA-XML:project:1.0" name="x"><CodeBook><Codes>'
           f'<Code guid="{CODE_IDEEEN}" name="Veiligheid" isCodable="true"/></Codes></CodeBook><Sources>'
           f'<TextSource guid="{SOURCE_GUID}" name="BQ.docx" richTextPath="internal://{SOURCE_GUID}.docx">'
           + _SELECTION.format(start=start, end=start + 20, code=CODE_IDEEEN) + "</TextSource></Sources></Project>")
    archive = _write_qdpx(tmp_path / "docx.qdpx", qde, {f"sources/{SOURCE_GUID}.docx": buffer.read_bytes()})
    mapping = tmp_path / "map.yaml"
    mapping.write_text("codes:\n  Veiligheid: psychologische_veiligheid\n", encoding="utf-8")
    book = load_codebook()
    report = import_qdpx(archive, fresh_store, segmenter, book, load_qda_mapping(mapping, book))
    assert report.ok and any("no plain-text twin" in note for note in report.notes)
    assert [(u.text, c[0].code) for u, c, _, _ in fresh_store.iter_annotated()] == \
        [("Iedereen durft fouten te melden.", "psychologische_veiligheid")]


def test_qda_place_selection_rule() -> None:
    def utterance(start: int, end: int) -> Utterance:
        return Utterance(f"u{start}", "t", 0, start, Speaker.RESPONDENT, start, end, "x" * (end - start), "M", "BQ",
                         Role.MANAGER)

    sentences = [utterance(0, 10), utterance(11, 31), utterance(32, 40)]
    assert [u.start for u, _ in place_selection(0, 40, sentences)] == [0, 11, 32]
    assert [u.start for u, _ in place_selection(4, 22, sentences)] == [0, 11]  # 6/10 and 11/20 covered
    assert [u.start for u, _ in place_selection(14, 18, sentences)] == [11]  # a clause: largest overlap
    assert [u.start for u, _ in place_selection(7, 16, sentences)] == [11]  # 3 vs 5 characters, neither half
    assert place_selection(10, 11, sentences) == []


# ---------------------------------------------------------------- errors name the element
def _minimal_qde(selection: str = "", namespace: str = "urn:QDA-XML:project:1.0") -> str:
    return (f'<Project xmlns="{namespace}" name="x"><CodeBook><Codes>'
            f'<Code guid="{CODE_IDEEEN}" name="A" isCodable="true"/></Codes></CodeBook>'
            f'<Sources><TextSource guid="{SOURCE_GUID}" name="bron" plainTextPath="internal://{SOURCE_GUID}.txt">'
            f'{selection}</TextSource></Sources></Project>')


_SELECTION = ('<PlainTextSelection guid="5E1E0000-0000-4000-8000-000000000009" startPosition="{start}" '
              'endPosition="{end}"><Coding guid="C0D10000-0000-4000-8000-000000000009">'
              '<CodeRef targetGUID="{code}"/></Coding></PlainTextSelection>')
_FILES = {f"sources/{SOURCE_GUID}.txt": "Respondent: kort.".encode()}


@pytest.mark.parametrize(("name", "qde", "files", "message"), [
    ("corrupt", None, None, "not a ZIP archive"),
    ("no-qde", "", {"sources/a.txt": b"x"}, "no project.qde at the root"),
    ("namespace", _minimal_qde(namespace="urn:QDA-XML:project:2.0"), _FILES, "unknown namespace 'urn:QDA-XML:project:2.0'"),
    ("not-xml", "<Project", _FILES, "not well-formed XML"),
    ("outside", _minimal_qde(_SELECTION.format(start=5, end=99, code=CODE_IDEEEN)), _FILES,
     r"<PlainTextSelection guid=\"5E1E0000-0000-4000-8000-000000000009\"> in source 'bron': positions 5-99 lie outside"),
    ("missing-code", _minimal_qde(_SELECTION.format(start=0, end=5, code=CODE_EIGEN)), _FILES,
     rf"<Coding guid=\"C0D10000-0000-4000-8000-000000000009\"> in source 'bron': refers to code {CODE_EIGEN}"),
    ("missing-file", _minimal_qde(), {}, "which is not in the archive's sources/ folder"),
])
def test_qda_broken_archives_fail_naming_the_element(tmp_path: Path, name: str, qde: str | None,
                                                     files: dict | None, message: str) -> None:
    path = tmp_path / f"{name}.qdpx"
    if qde is None:
        path.write_bytes(b"PK\x03\x04 not really a zip")
    elif qde == "":
        with zipfile.ZipFile(path, "w") as z:
            for member, data in files.items():
                z.writestr(member, data)
    else:
        _write_qdpx(path, qde, files)
    with pytest.raises(QdaFormatError, match=message):
        read_qdpx(path)


# ---------------------------------------------------------------- mapping
def test_qda_suggest_mapping_by_name_definition_and_direction_subcodes(tmp_path: Path) -> None:
    archive = _write_qdpx(tmp_path / "boom.qdpx", f"""<Project xmlns="urn:QDA-XML:project:1.0" name="boom"><CodeBook><Codes>
      <Code guid="{qda_guid('t', '1')}" name="Leeromgeving" isCodable="false">
        <Code guid="{qda_guid('t', '2')}" name="Psychologische veiligheid" isCodable="true"/>
        <Code guid="{qda_guid('t', '3')}" name="Tijd voor evaluatie" isCodable="true">
          <Code guid="{qda_guid('t', '4')}" name="negatief" isCodable="true"/>
          <Code guid="{qda_guid('t', '5')}" name="positief" isCodable="true"/>
        </Code>
      </Code>
      <Code guid="{qda_guid('t', '6')}" name="Pilots" isCodable="true"><Description>Pilots en experimenteel beleid,
        proeftuinen, standaardprocedures om experimenten op te zetten en te evalueren.</Description></Code>
      <Code guid="{qda_guid('t', '7')}" name="Lunch" isCodable="true"/>
    </Codes></CodeBook></Project>""")
    book = load_codebook()
    suggestions = {s.name: s for s in suggest_mapping(read_qdpx(archive).codes, book)}
    assert "Leeromgeving" not in suggestions  # a folder carries no codings
    assert (suggestions["Leeromgeving::Psychologische veiligheid"].code,
            suggestions["Leeromgeving::Psychologische veiligheid"].score) == ("psychologische_veiligheid", 1.0)
    assert suggestions["Leeromgeving::Tijd voor evaluatie"].code == "tijd_evaluatie"
    negative = suggestions["Leeromgeving::Tijd voor evaluatie::negatief"]
    assert (negative.code, negative.direction) == ("tijd_evaluatie", "-")
    assert suggestions["Leeromgeving::Tijd voor evaluatie::positief"].direction == "+"
    assert suggestions["Pilots"].code == "experimenteren"
    assert suggestions["Lunch"].code is None and suggestions["Lunch"].alternative

    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "ws"), "import-qdpx", str(archive),
                                      "--suggest-mapping", "--mapping", str(tmp_path / "map.yaml")])
    assert result.exit_code == 0, result.output
    mapping = load_qda_mapping(tmp_path / "map.yaml", book)  # the proposal is a valid mapping file
    assert mapping.codes["leeromgeving::tijd voor evaluatie::negatief"].direction == "-"
    assert mapping.codes["lunch"] is None


@pytest.mark.parametrize(("content", "message"), [
    ("codes:\n  Werkdruk: werkdruk\n", r"map.yaml, code 'Werkdruk': 'werkdruk' is not a codable code"),
    ("codes:\n  Werkdruk: ondersteunende_leeromgeving\n", "is not a codable code"),
    ("codes:\n  Werkdruk: {code: tijd_evaluatie, direction: min}\n", "direction 'min' must be"),
    ("codebook_version: scriptie2017\ncodes: {}\n", "written for codebook 'scriptie2017'"),
    ("variables:\n  gemeentenaam: Gemeente\n", "'gemeentenaam' is not one of"),
])
def test_qda_mapping_errors_name_file_and_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(QdaMappingError, match=message):
        load_qda_mapping(path, load_codebook())


# ---------------------------------------------------------------- command line
def test_qda_cli_export_import_and_qdc(tmp_path: Path, interview_file: Path) -> None:
    runner = CliRunner()

    def run(home: str, *args: str):
        return runner.invoke(cli, ["--home", str(tmp_path / home), *args])

    assert run("a", "ingest", str(interview_file)).exit_code == 0
    exported = run("a", "export-qdpx", str(tmp_path / "out.qdpx"), "--include", "reviewed")
    assert exported.exit_code == 0 and "1 source(s)" in exported.output
    imported = run("b", "import-qdpx", str(tmp_path / "out.qdpx"))
    assert imported.exit_code == 0 and "1 new" in imported.output, imported.output
    assert run("a", "transcripts").output == run("b", "transcripts").output

    unmapped = run("c", "import-qdpx", str(_crlf_archive(tmp_path, "lf")))
    assert unmapped.exit_code == 1 and "NOT IMPORTED code 'Werkdruk::negatief'" in unmapped.stderr
    missing = run("c", "import-qdpx", str(tmp_path / "out.qdpx"), "--mapping", str(tmp_path / "geen.yaml"))
    assert missing.exit_code == 1 and "no such mapping file" in missing.output

    assert run("a", "codebook", "export-qdc", str(tmp_path / "cb.qdc")).exit_code == 0
    converted = run("a", "codebook", "import-qdc", str(tmp_path / "cb.qdc"), "--version", "kopie",
                    "--out", str(tmp_path / "kopie.yaml"))
    assert converted.exit_code == 0 and "codebook 'kopie'" in converted.output
    assert load_codebook_file(tmp_path / "kopie.yaml").incentives == load_codebook().incentives
    again = run("a", "codebook", "import-qdc", str(tmp_path / "cb.qdc"), "--version", "kopie",
                "--out", str(tmp_path / "kopie.yaml"))
    assert again.exit_code == 1 and "exists" in again.output
