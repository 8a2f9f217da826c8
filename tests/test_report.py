"""The HTML, Markdown and Excel reports written from a small, hand-made codings table."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from pipeline.codebook import load_codebook
from pipeline.rating.context import rate_context
from pipeline.rating.differences import compare_municipalities
from pipeline.rating.rules import load_rating_rules
from pipeline.rating.verdicts import rate_incentives
from pipeline.report.provenance import Provenance, provenance_from_codings
from pipeline.report.render import render_html, write_report

BOOK = load_codebook("garvin2008")
RULES = load_rating_rules()
SAFETY, TRAINING = "psychologische_veiligheid", "onderwijs_training"
NAME = "Jantje Pietersen"
ROLES = {"B": "beleidsmedewerker", "M": "manager", "D": "document"}


def _codings() -> pd.DataFrame:
    said = [
        ("Eschveld", "BE", SAFETY, "+", "Hier kun je gewoon zeggen dat je het niet weet."),
        ("Eschveld", "BE", SAFETY, "+", "Fouten bespreken we in het teamoverleg, zonder gedoe."),
        ("Eschveld", "ME", SAFETY, "+", "Niemand wordt hier afgerekend op een misser."),
        ("Eschveld", "ME", SAFETY, "+",
         "<script>alert('x')</script> & zo, dat typte iemand ooit in de chat, en niemand die daar moeilijk over deed."),
        ("Eschveld", "BE", TRAINING, "-", "Op cursus gaan we eigenlijk nooit."),
        ("Eschveld", "ME", TRAINING, "-", "Het opleidingsbudget blijft liggen."),
        ("Eschveld", "ME", TRAINING, "-", "Niemand vraagt erom."),
        ("Kerkeloo", "BK", SAFETY, "-", "Je houdt je mond maar liever."),
        ("Kerkeloo", "MK", SAFETY, "-", "Er wordt wel eens gelachen om fouten, dat helpt niet."),
        ("Kerkeloo", "MK", SAFETY, "-", "Men zegt het liever bij de koffieautomaat."),
        ("Kerkeloo", "BK", TRAINING, "+", "Iedereen volgt dit jaar de training gespreksvoering."),
        ("Kerkeloo", "MK", TRAINING, "+", "We gaan met het hele team naar de leergang."),
        ("Kerkeloo", "BK", TRAINING, "+", "De cursus was echt goed, ik gebruik het elke dag."),
        ("Zandeloo", "DZ", SAFETY, "+", "Het is klein en veilig."),  # a document alone carries no verdict
        ("Zandeloo", "BZ", "cultuur", "+", "De sfeer is informeel."),
        ("Zandeloo", "MZ", "cultuur", "+", "Iedereen kent iedereen."),
    ]
    rows = [{"utterance_id": f"u{i:03d}", "transcript_id": f"t-{respondent}", "municipality": municipality,
             "respondent": respondent, "role": ROLES[respondent[0]], "code": code, "direction": direction,
             "facet": None if code == "cultuur" else "practice", "weight": 1.0, "source": "human", "text": text,
             "respondent_name": NAME}
            for i, (municipality, respondent, code, direction, text) in enumerate(said)]
    return pd.DataFrame(rows)


@pytest.fixture()
def written(tmp_path: Path):  # type: ignore[no-untyped-def]
    codings = _codings()
    ratings = rate_incentives(codings, BOOK, RULES)
    provenance = provenance_from_codings(codings, model_id="seed-model-0001", codebook_version=BOOK.version,
                                         rules_version=RULES.version, created_at="2026-11-28")
    files = write_report(tmp_path / "rapport", ratings, BOOK, provenance, context=rate_context(codings, BOOK, RULES),
                         differences=compare_municipalities(ratings, RULES), codings=codings, fictional=True,
                         region_name="Lindeland")
    return files, ratings


def test_report_html_has_the_heatmap_with_hatched_thin_evidence(written) -> None:  # type: ignore[no-untyped-def]
    files, _ = written
    page = files.html.read_text(encoding="utf-8")
    heatmap = page[page.index('<table class="heatmap">'):]
    heatmap = heatmap[:heatmap.index("</table>")]
    headers = re.findall(r'<th class="muni[^"]*" scope="col">([^<]+)</th>', heatmap)
    assert headers == ["Eschveld", "Kerkeloo", "Zandeloo", "regio"]  # the region's name (issue 17: regions come from data)
    assert heatmap.count("<tr><th scope=\"row\">") == len(BOOK.incentives)
    safety_row = re.search(r'<th scope="row">Psychologische veiligheid</th>(.*?)</tr>', heatmap).group(1)
    assert re.findall(r'class="cell r-([a-z_]+)', safety_row) == [
        "voldoende", "onvoldoende", "onvoldoende_bewijs", "matig"]  # the region pools all five sources
    assert "repeating-linear-gradient" in page  # the hatch of onvoldoende bewijs
    # self-contained: inline CSS, SVG and one small inline script, nothing fetched
    assert "<link" not in page and "src=" not in page and "http://" not in page.replace("http://www.w3.org", "")


def test_report_escapes_text_and_shows_no_names(written) -> None:  # type: ignore[no-untyped-def]
    files, _ = written
    page = files.html.read_text(encoding="utf-8")
    markdown = files.markdown.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; zo" in page
    assert page.count("<script") == 1 and "<script" not in markdown  # only the report's own cell script
    assert "&lt;script&gt;" in markdown
    workbook = load_workbook(files.excel)
    cells = " ".join(str(c.value) for sheet in workbook for row in sheet.iter_rows() for c in row if c.value)
    for text in (page, markdown, cells):
        assert NAME not in text and "Pietersen" not in text
    assert "(ME)" in page  # quotes carry the respondent code


def test_report_regional_verdicts_quote_fragments_with_codes(written) -> None:  # type: ignore[no-untyped-def]
    files, ratings = written
    page = files.html.read_text(encoding="utf-8")
    assert page.count("<blockquote>") >= 2
    quote = re.search(r"<blockquote>“Op cursus gaan we eigenlijk nooit.”<cite>\(BE\)</cite></blockquote>", page)
    training_region = next(r for r in ratings if r.municipality == "regio" and r.code == TRAINING)
    assert (quote is not None) == (training_region.rating != "voldoende")


def test_report_states_fictional_corpus_and_provenance(written) -> None:  # type: ignore[no-untyped-def]
    files, ratings = written
    page = files.html.read_text(encoding="utf-8")
    assert "fictief demonstratiecorpus" in page and "fictief demonstratiecorpus" in files.markdown.read_text("utf-8")
    assert "seed-model-0001" in page and "garvin2008" in page and RULES.version in page
    assert "<th>Gecodeerde fragmenten</th><td>16</td>" in page
    plain = render_html(ratings, BOOK, Provenance("m", "garvin2008", RULES.version))
    assert "fictief" not in plain


def test_report_excel_opens_with_the_tables(written) -> None:  # type: ignore[no-untyped-def]
    files, ratings = written
    workbook = load_workbook(files.excel)
    assert workbook.sheetnames == ["Overzicht", "Beoordelingen", "Context", "Verschillen", "Leerparen", "Herkomst"]
    overview = workbook["Overzicht"]
    assert [c.value for c in overview[1]] == ["prikkel", "Eschveld", "Kerkeloo", "Zandeloo", "regio"]
    assert [c.value for c in overview[2]][:3] == ["Psychologische veiligheid", "V", "O"]
    assert overview["B2"].fill.fgColor.rgb.endswith("2E7D32")
    assert overview["D2"].fill.fill_type == "lightUp"  # hatched: not enough evidence
    assert workbook["Beoordelingen"].max_row == len(ratings) + 1
    pairs = list(workbook["Leerparen"].iter_rows(min_row=2, values_only=True))
    assert ("psychologische_veiligheid", "Eschveld", "Kerkeloo") in {row[:3] for row in pairs}


def test_report_excel_never_reads_text_as_formula(tmp_path: Path) -> None:
    codings = _codings()
    codings["municipality"] = codings["municipality"].replace("Eschveld", "=HYPERLINK(\"x\")")
    ratings = rate_incentives(codings, BOOK, RULES)
    files = write_report(tmp_path, ratings, BOOK, Provenance("m", "garvin2008", RULES.version))
    sheet = load_workbook(files.excel)["Beoordelingen"]
    values = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert "'=HYPERLINK(\"x\")" in values
