"""Interview PDFs (issue 18 item 6): a PDF is read with pypdf and taken for an interview or a policy
document by its content, the ingest says which and why, and a scan without text fails clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from fpdf import FPDF

from pipeline.cli import cli
from pipeline.corpus import ingest_paths, load_transcript
from pipeline.corpus.pdf import LabelledLine, _join_wrapped_lines, decide_source_kind
from pipeline.errors import ScannedPdfError
from pipeline.records import Role, Speaker

INTERVIEW = [
    "Naam respondent: BQ",
    "Functie: beleidsmedewerker Jeugd",
    "Werkend bij: gemeente Testerveen",
    "",
    "Onderzoeker: Hoe zou u de werkdruk in uw team omschrijven?",
    "Respondent: De werkdruk is heel hoog. We komen eigenlijk nergens aan toe, want er komen steeds nieuwe "
    "taken bij en het team is de afgelopen jaren niet gegroeid. Evalueren schiet er dan bij in.",
    "Onderzoeker: Worden er vaste momenten gepland om te evalueren?",
    "Respondent: Eens per jaar hebben we een heidag. Verder is er weinig ruimte voor reflectie.",
    "Onderzoeker: En hoe gaat het met opleidingen?",
    "Respondent: Er is budget voor cursussen, maar bijna niemand gaat op cursus.",
]
NAMED = [
    "Jan: Hoe zou u de werkdruk omschrijven?",
    "Petra: Die is hoog. We komen nergens aan toe.",
    "Jan: Is er tijd om te evalueren?",
    "Petra: Eens per jaar, op de heidag.",
    "Jan: Gaan mensen op cursus?",
    "Petra: Bijna niemand gaat op cursus.",
]
POLICY = [
    "Beleidsplan Sociaal Domein 2016-2019",
    "",
    "Inleiding",
    "De gemeente wil dat inwoners zo lang mogelijk zelfstandig blijven. Daarvoor werken de teams in de wijk "
    "nauw samen met maatschappelijke partners en worden de resultaten jaarlijks geevalueerd.",
    "Doel: de kennis van de teams vergroten. Medewerkers krijgen een persoonlijk opleidingsbudget.",
    "Werkwijze",
    "Elk kwartaal bespreekt het college de voortgang met de teamleiders.",
]


def _write_pdf(path: Path, paragraphs: list[str]) -> Path:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    for paragraph in paragraphs:
        if paragraph:
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.ln(6)
        pdf.ln(3)
    pdf.output(str(path))
    return path


def _scanned_pdf(path: Path) -> Path:
    """A page holding only a drawing, as a scanner leaves it (no text layer)."""
    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.rect(20, 20, 170, 250, style="F")
    pdf.output(str(path))
    return path


def test_pdf_interview_is_read_as_an_interview_with_turns(tmp_path: Path) -> None:
    transcript = load_transcript(_write_pdf(tmp_path / "BQ.pdf", INTERVIEW))
    assert transcript.kind == "interview" and transcript.role == Role.BELEIDSMEDEWERKER
    assert transcript.municipality == "Testerveen" and transcript.respondent == "BQ"
    speakers = [turn.speaker for turn in transcript.turns]
    assert speakers == [Speaker.INTERVIEWER, Speaker.RESPONDENT] * 3
    # the wrapped answer came back as one turn holding the whole answer
    second = transcript.turns[1]
    assert transcript.text[second.start:second.end].endswith("Evalueren schiet er dan bij in.")
    assert transcript.detection == ("read as an interview: 6 speaker turns (3 interviewer, 3 respondent); "
                                    "3 of the interviewer's turns ask a question")


def test_pdf_named_speakers_alternating_questions_make_an_interview(tmp_path: Path) -> None:
    transcript = load_transcript(_write_pdf(tmp_path / "gesprek.pdf", NAMED))
    assert transcript.kind == "interview"
    assert [turn.speaker for turn in transcript.turns] == [Speaker.INTERVIEWER, Speaker.RESPONDENT] * 3
    assert "one of them asks the questions" in transcript.detection
    assert "Jan" not in transcript.detection and "Petra" not in transcript.detection  # names stay out


def test_pdf_policy_document_is_read_as_a_document(tmp_path: Path) -> None:
    transcript = load_transcript(_write_pdf(tmp_path / "beleidsplan.pdf", POLICY))
    assert transcript.kind == "document"
    assert {turn.speaker for turn in transcript.turns} <= {Speaker.DOCUMENT, Speaker.INTERVIEWER}
    # one labelled line ("Doel: ...") is no conversation
    assert transcript.detection == ("read as a policy document: 1 labelled line(s) (0 interviewer, 0 respondent), "
                                    "not two speakers taking turns")


def test_pdf_scan_without_text_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ScannedPdfError, match=r"scan\.pdf: the PDF has 2 page\(s\) but no text") as caught:
        load_transcript(_scanned_pdf(tmp_path / "scan.pdf"))
    assert "OCR" in caught.value.fix and caught.value.reason == "scanned PDF without text"


@pytest.mark.parametrize(("lines", "kind"), [
    ([], "document"),
    ([LabelledLine("Respondent", Speaker.RESPONDENT, False)], "document"),  # a header field, not a turn
    ([LabelledLine("I", Speaker.INTERVIEWER, True), LabelledLine("R", Speaker.RESPONDENT, False)] * 2, "interview"),
    # two names taking turns, but nobody asks: minutes of a meeting, not an interview
    ([LabelledLine("Jan", None, False), LabelledLine("Piet", None, False)] * 3, "document"),
    ([LabelledLine("Jan", None, True), LabelledLine("Piet", None, False)] * 3, "interview"),
])
def test_pdf_decide_source_kind(lines: list[LabelledLine], kind: str) -> None:
    assert decide_source_kind(lines).kind == kind


def test_pdf_ingest_output_says_which_and_why(tmp_path: Path, fresh_store, segmenter) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _write_pdf(folder / "BQ.pdf", INTERVIEW)
    _write_pdf(folder / "beleidsplan.pdf", POLICY)
    _scanned_pdf(folder / "scan.pdf")
    report = ingest_paths([folder], fresh_store, segmenter)
    by_name = {Path(r.path).name: r for r in report.results}
    assert by_name["BQ.pdf"].status == "new" and by_name["BQ.pdf"].note.startswith("read as an interview")
    assert by_name["beleidsplan.pdf"].note.startswith("read as a policy document")
    assert by_name["scan.pdf"].status == "failed" and by_name["scan.pdf"].reason == "scanned PDF without text"
    kinds = {t.source: t.kind for t in fresh_store.list_transcripts()}
    assert kinds == {"BQ.pdf": "interview", "beleidsplan.pdf": "document"}

    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "ws"), "ingest", str(folder)])
    assert result.exit_code == 1
    assert f"NOTE {folder / 'BQ.pdf'}: read as an interview: 6 speaker turns" in result.stdout
    assert "FAILED (scanned PDF without text)" in result.stderr and "OCR" in result.stderr


def test_pdf_wrapped_answer_does_not_swallow_the_next_timestamped_turn() -> None:
    # a full-width last line without final punctuation, as pypdf gives a wrapped answer ending in "(lacht)"
    page = ("Respondent: Ik ben benieuwd hoe wij het doen ten opzichte van de andere gemeenten in de\n"
            "regio. Stuurt u het rapport? Dan zet ik het op de agenda van de heidag van het team (lacht)\n"
            "[00:35:59] Onderzoeker: Dat doe ik. Dank u wel.\n"
            "Respondent: Dank u.")
    assert _join_wrapped_lines(page).split("\n") == [
        "Respondent: Ik ben benieuwd hoe wij het doen ten opzichte van de andere gemeenten in de regio. Stuurt u "
        "het rapport? Dan zet ik het op de agenda van de heidag van het team (lacht)",
        "[00:35:59] Onderzoeker: Dat doe ik. Dank u wel.", "Respondent: Dank u."]
