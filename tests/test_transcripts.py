"""Reading transcripts: formats, encodings, speaker variants, metadata and bad input."""

from __future__ import annotations

import re
from pathlib import Path

import docx
import pytest

from pipeline.corpus.folders import find_sources, metadata_for
from pipeline.corpus.transcripts import SourceMetadata, load_transcript
from pipeline.errors import (
    CorruptDocumentError,
    EmptyTranscriptError,
    NoRespondentTurnsError,
    UndecodableFileError,
    UnknownSpeakerError,
)
from pipeline.records import Role, Speaker


def respondent_texts(transcript) -> list[str]:
    return [transcript.text[t.start : t.end] for t in transcript.turns if t.speaker == Speaker.RESPONDENT]


def test_transcripts_thesis_header_gives_metadata(interview_file: Path) -> None:
    transcript = load_transcript(interview_file)
    assert (transcript.municipality, transcript.respondent, transcript.role) == ("Testerveen", "BQ", Role.BELEIDSMEDEWERKER)
    assert [t.speaker for t in transcript.turns] == [Speaker.INTERVIEWER, Speaker.RESPONDENT] * 2
    # a turn running over two paragraphs stays one turn
    assert respondent_texts(transcript)[0].endswith("Dat is eigenlijk al jaren zo.")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_transcripts_encodings_and_line_ends_give_same_text(tmp_path: Path, interview_text: str, encoding: str, newline: str) -> None:
    path = tmp_path / "BQ.txt"
    path.write_bytes(interview_text.replace("\n", newline).replace("…", "...").encode(encoding))
    transcript = load_transcript(path)
    assert "\r" not in transcript.text
    assert respondent_texts(transcript)[1] == 'Die worden wel gewaardeerd. "Doe maar," zegt mijn teamleider dan.'
    assert transcript.encoding.startswith(encoding.split("-sig")[0].replace("utf-16", "utf-16"))


@pytest.mark.parametrize(
    ("interviewer", "respondent"),
    [("I", "R"), ("Interviewer", "Respondent"), ("Onderzoeker", "BQ"), ("[00:01:12] I", "[00:01:40] R"), ("Onderzoeker", "Mevrouw Jansen")],
)
def test_transcripts_speaker_variants(tmp_path: Path, interviewer: str, respondent: str) -> None:
    text = (
        "Naam respondent: BQ\nWerkend bij: gemeente Testerveen\n\n"
        f"{interviewer}: Hoe gaat het met de werkdruk?\n\n{respondent}: Het is echt te veel. We komen nergens aan toe.\n\n"
        f"{interviewer}: En evaluaties?\n\n{respondent}: Die schieten erbij in [onverstaanbaar].\n"
    )
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    transcript = load_transcript(path)
    assert respondent_texts(transcript) == ["Het is echt te veel. We komen nergens aan toe.", "Die schieten erbij in [onverstaanbaar]."]
    assert transcript.respondent == "BQ"


def test_transcripts_sidecar_wins_over_header(tmp_path: Path, interview_text: str) -> None:
    (tmp_path / "BQ.txt").write_text(interview_text, encoding="utf-8")
    (tmp_path / "metadata.csv").write_text("file,municipality,respondent,role\nBQ.txt,Elders,MQ,manager\n", encoding="utf-8")
    path = tmp_path / "BQ.txt"
    transcript = load_transcript(path, metadata=metadata_for(path, {}, None))
    assert (transcript.municipality, transcript.respondent, transcript.role) == ("Elders", "MQ", Role.MANAGER)
    assert [p.name for p, _ in find_sources([tmp_path])] == ["BQ.txt"]


def test_transcripts_name_in_header_is_never_stored(tmp_path: Path, interview_text: str) -> None:
    path = tmp_path / "x.txt"
    path.write_text(interview_text.replace("Naam respondent: BQ", "Naam respondent: Jan de Vries"), encoding="utf-8")
    transcript = load_transcript(path)
    # a registry code (issue 19), not a hash of the name; the text keeps the name until deidentify_transcript
    assert "Jan" not in transcript.respondent and re.fullmatch(r"R\d{4}", transcript.respondent)


def test_transcripts_docx(tmp_path: Path, interview_text: str) -> None:
    document = docx.Document()
    for line in interview_text.split("\n"):
        document.add_paragraph(line)
    path = tmp_path / "BQ.docx"
    document.save(path)
    transcript = load_transcript(path)
    assert transcript.file_format == "docx"
    assert respondent_texts(transcript)[1].startswith("Die worden wel gewaardeerd.")


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "error", "line", "words"),
    [
        ("empty.txt", b"  \n\n", EmptyTranscriptError, None, "empty"),
        ("binary.txt", bytes(range(256)) * 20, UndecodableFileError, None, "binary"),
        ("only-interviewer.txt", b"Naam respondent: BQ\n\nOnderzoeker: Hallo?\n\nOnderzoeker: Iemand?\n", NoRespondentTurnsError, 3, "only interviewer"),
        ("speakers.txt", b"Onderzoeker: Vraag?\n\nRespondent: Antwoord.\n\nNotulist: Noot.\n\nNotulist: Nog een.\n", UnknownSpeakerError, 5, "'Notulist'"),
        ("broken.docx", b"PK\x03\x04 not really a zip", CorruptDocumentError, None, ".docx"),
    ],
)
def test_transcripts_bad_input_names_file_line_and_fix(tmp_path: Path, name: str, data: bytes, error: type, line: int | None, words: str) -> None:
    path = _write(tmp_path, name, data)
    with pytest.raises(error) as raised:
        load_transcript(path)
    err = raised.value
    message = str(err)
    assert message.startswith(str(path))
    assert err.line == line
    if line is not None:
        assert f", line {line}:" in message
    assert words in message
    assert err.fix, "every bad-input error says what to do"


def test_transcripts_undecodable_names_line(tmp_path: Path) -> None:
    # 0x81 is undefined in cp1252 and invalid in UTF-8
    path = _write(tmp_path, "bad.txt", b"Onderzoeker: Vraag?\n\nRespondent: Caf\x81 en \xff.\n")
    with pytest.raises(UndecodableFileError, match=r"bad.txt, line 3: byte"):
        load_transcript(path)


def test_transcripts_document_paragraphs(tmp_path: Path) -> None:
    path = tmp_path / "DQ-plan.txt"
    path.write_text("Titel: Beleidsplan\nGemeente: Testerveen\n\n2.1 Leren\n\nDe gemeente investeert in opleiding. Medewerkers volgen cursussen.\n\nTweede alinea.\n", encoding="utf-8")
    transcript = load_transcript(path, metadata=SourceMetadata(respondent="DQ"))
    assert transcript.role == Role.DOCUMENT and transcript.municipality == "Testerveen"
    assert [t.speaker for t in transcript.turns] == [Speaker.INTERVIEWER, Speaker.DOCUMENT, Speaker.DOCUMENT]
