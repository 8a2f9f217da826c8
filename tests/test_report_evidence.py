"""Issue 21: the report's first screen states trust, every cell opens its fragments, charts, Dutch throughout."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from pipeline.codebook import load_codebook
from pipeline.rating.context import rate_context
from pipeline.rating.differences import compare_municipalities
from pipeline.rating.rules import load_rating_rules
from pipeline.rating.verdicts import rate_incentives
from pipeline.report import model_quality, write_report
from pipeline.report.fragments import checked_share, fragment_index, transcript_link
from pipeline.report.provenance import provenance_from_codings
from pipeline.resources import packaged_models_dir

BOOK = load_codebook("garvin2008")
RULES = load_rating_rules()
SAFETY, TRAINING, ANALYSIS = "psychologische_veiligheid", "onderwijs_training", "analyse"
ROLES = {"B": "beleidsmedewerker", "M": "manager"}


def _card() -> dict:
    models = packaged_models_dir()
    current = (models / "CURRENT").read_text(encoding="utf-8").strip()
    return json.loads((models / current / "card.json").read_text(encoding="utf-8"))


def _codings() -> pd.DataFrame:
    said = [  # municipality, respondent, code, direction, facet, source, weight
        ("Eschveld", "BE", SAFETY, "+", "practice", "human", 1.0),
        ("Eschveld", "BE", SAFETY, "+", "practice", "predicted", 0.81),
        ("Eschveld", "ME", SAFETY, "+", "provision", "predicted", 0.77),
        ("Eschveld", "ME", SAFETY, "0", "practice", "predicted", 0.66),
        ("Eschveld", "BE", TRAINING, "-", "practice", "human", 1.0),
        ("Eschveld", "ME", TRAINING, "-", "provision", "predicted", 0.9),
        ("Eschveld", "ME", TRAINING, "+", "provision", "human", 1.0),
        ("Kerkeloo", "BK", SAFETY, "-", "practice", "predicted", 0.7),
        ("Kerkeloo", "MK", SAFETY, "-", "practice", "human", 1.0),
        ("Kerkeloo", "MK", SAFETY, "+", "provision", "predicted", 0.6),
        ("Kerkeloo", "BK", TRAINING, "+", "practice", "predicted", 0.95),
        ("Kerkeloo", "MK", TRAINING, "+", "practice", "predicted", 0.88),
        ("Kerkeloo", "BK", ANALYSIS, "-", "practice", "predicted", 0.75),
        ("Kerkeloo", "MK", ANALYSIS, "-", "practice", "predicted", 0.8),
        ("Eschveld", "BE", "cultuur", "+", None, "predicted", 0.7),
        ("Kerkeloo", "MK", "structuur", "-", None, "human", 1.0),
    ]
    rows = [{"utterance_id": f"u{i:03d}", "transcript_id": f"t-{respondent}", "turn": 3 + 2 * i,
             "municipality": municipality, "respondent": respondent, "role": ROLES[respondent[0]], "code": code,
             "direction": direction, "facet": facet, "weight": weight, "source": source,
             "text": f"Fragment nummer {i} over {code} met genoeg woorden om te citeren."}
            for i, (municipality, respondent, code, direction, facet, source, weight) in enumerate(said)]
    return pd.DataFrame(rows)


def _write(tmp_path: Path, review_url: str | None = None):  # type: ignore[no-untyped-def]
    codings = _codings()
    ratings = rate_incentives(codings, BOOK, RULES)
    provenance = provenance_from_codings(codings, model_id="m-1", codebook_version=BOOK.version,
                                         rules_version=RULES.version, created_at="2026-12-04T14:27:00+00:00")
    files = write_report(tmp_path, ratings, BOOK, provenance, context=rate_context(codings, BOOK, RULES),
                         differences=compare_municipalities(ratings, RULES), codings=codings,
                         region_name="Lindeland", quality=model_quality(_card()), review_url=review_url)
    return files, ratings, codings


class _Cells(HTMLParser):
    """Cell links of the grid and the ids of the fragment panels."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.panels: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "a" and "cell-link" in values.get("class", ""):
            self.links.append(values["href"])
        if tag == "details" and "cell-fragments" in values.get("class", ""):
            self.panels[values["id"]] = values


def test_first_screen_states_checked_share_and_real_text_scores(tmp_path: Path) -> None:
    files, ratings, codings = _write(tmp_path)
    page = files.html.read_text(encoding="utf-8")
    first_screen = page[:page.index('<table class="heatmap">')]
    share = checked_share(ratings, fragment_index(codings))
    assert 0 < share.n_checked < share.n_fragments
    expected = f"{round(100 * share.n_checked / share.n_fragments)}%"
    assert f'<span class="big">{expected}</span> van het bewijs is door een mens' in first_screen
    assert f"Een mens heeft {share.n_checked} van de {share.n_fragments} fragmenten" in first_screen
    quality = model_quality(_card())
    top1 = f"{quality.yardstick_top1 * 100:.0f}%"
    assert f"Op {quality.yardstick_n} echte zinnen uit de scriptie" in first_screen and top1 in first_screen
    assert "Gemaakt op" in first_screen and "4 december 2026, 14:27" in first_screen
    assert 'href="evaluatie.html"' in first_screen
    evaluation = files.evaluation.read_text(encoding="utf-8")
    assert quality.model_id in evaluation and top1.replace("%", "") in evaluation


def test_every_cell_opens_its_fragments_with_source_and_confidence(tmp_path: Path) -> None:
    files, ratings, _ = _write(tmp_path)
    page = files.html.read_text(encoding="utf-8")
    cells = _Cells()
    cells.feed(page)
    assert len(cells.links) == len(ratings)  # every rated cell, municipalities and the region
    for link in cells.links:
        assert link.startswith("#") and link[1:] in cells.panels
    panel = next(key for key, v in cells.panels.items() if v["data-municipality"] == "Eschveld"
                 and v["data-code"] == TRAINING)
    body = page[page.index(f'id="{panel}"'):]
    body = body[:body.index("</details>")]
    assert body.count('<li class="fragment') == 3
    assert "mens" in body and "model, zekerheid 90%" in body  # who coded it, with the model's confidence
    assert "praktijk" in body and "aanbod" in body and "<cite>BE</cite>" in body
    assert "transcript t-BE, beurt 11" in body  # no web app address: transcript and turn, no link
    assert "Stabiliteit" in body
    assert 'href="http' not in body


def test_fragments_link_to_the_transcript_view_when_the_app_address_is_set(tmp_path: Path) -> None:
    files, _, _ = _write(tmp_path, review_url="http://localhost:8000/")
    page = files.html.read_text(encoding="utf-8")
    assert 'href="http://localhost:8000/transcripts/t-BE#uu004"' in page
    fragment = fragment_index(_codings())[("u004", TRAINING)]
    assert transcript_link(fragment, None) is None


def test_report_holds_at_least_four_inline_svg_charts(tmp_path: Path) -> None:
    files, _, _ = _write(tmp_path)
    page = files.html.read_text(encoding="utf-8")
    charts = re.findall(r'<figure class="chart" id="([a-z-]+)">.*?<svg', page, flags=re.DOTALL)
    assert len(charts) >= 4 and {"grafiek-bewijs", "grafiek-praktijk", "grafiek-rollen", "grafiek-context"} <= set(charts)
    assert page.count("<svg") == len(charts)
    assert "<image" not in page and "xlink:href=\"http" not in page  # drawn, not fetched
    assert "Praktijk tegenover aanbod" in page and "Managers en beleidsmedewerkers" in page
    assert len(page.encode("utf-8")) < 1_000_000


def test_report_numbers_use_a_decimal_comma_and_excel_headers_are_dutch(tmp_path: Path) -> None:
    files, _, _ = _write(tmp_path)
    page = files.html.read_text(encoding="utf-8")
    # the charts, the page's code and the English translation of each rationale aside
    prose = re.sub(r"<svg.*?</svg>|<style>.*?</style>|<script>.*?</script>|<details><summary class=\"small\">English.*?</details>",
                   "", page, flags=re.DOTALL)
    prose = re.sub(r"<[^>]+>", " ", prose)
    prose = prose.replace("2026-12-04T14:27:00", "").replace(RULES.version, "")  # a date and a version, not numbers
    assert not re.search(r"\d\.\d", prose), re.findall(r".{20}\d\.\d.{20}", prose)
    markdown = files.markdown.read_text(encoding="utf-8")
    assert "Gemaakt op 4 december 2026" in markdown and "Hoeveel kunt u hierop bouwen?" in markdown
    workbook = load_workbook(files.excel)
    headers = [c.value for c in workbook["Beoordelingen"][1]]
    assert headers[:4] == ["gemeente", "code", "prikkel", "oordeel"]
    assert "stabiliteit" in headers and "bronnen voor" in headers
    assert not {"municipality", "rating", "confidence", "stability"} & set(headers)
    levels = {row[headers.index("niveau")] for row in workbook["Beoordelingen"].iter_rows(min_row=2, values_only=True)}
    assert levels == {"gemeente", "regio"}


def test_model_quality_without_yardstick_says_so() -> None:
    quality = model_quality({"model_id": "x", "metrics": {"macro_f1": 0.5}})
    assert not quality.has_yardstick and quality.cv_macro_f1 == 0.5


@pytest.mark.parametrize("value,expected", [(0.7912, "0,79"), (None, "–")])
def test_dutch_numbers(value: float | None, expected: str) -> None:
    from pipeline.report.dutch import nl_number

    assert nl_number(value) == expected
