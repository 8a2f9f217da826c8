"""Questionnaires: definitions, reading Google Forms exports, evidence, summaries, storage."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.codebook import load_codebook
from pipeline.corpus.questionnaire import read_questionnaire
from pipeline.corpus.questionnaire_forms import (
    EVIDENCE_COLUMNS,
    QuestionnaireDefinitions,
    load_questionnaires,
    parse_questionnaires,
)
from pipeline.errors import ConfigError, QuestionnaireFormatError
from pipeline.rating.questionnaire_evidence import questionnaire_evidence, stored_questionnaire_evidence, summarise
from pipeline.records import Role
from pipeline.resources import questionnaires_file

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo" / "questionnaires"
POLICY_OFFICERS = DEMO / "beleidsmedewerkers.csv"
MANAGERS = DEMO / "managers.csv"
MUNICIPALITIES = {"Eschveld", "Hulsterlo", "Kerkeloo", "Lemmerbroek", "Ravenhorst", "Sonnevelde", "Vennebroek", "Zandeloo"}
LEADERSHIP = ("actief_bevragen_luisteren", "belang_van_leren", "ondersteunen_perspectieven")


@pytest.fixture(scope="module")
def definitions() -> QuestionnaireDefinitions:
    return load_questionnaires()


@pytest.fixture(scope="module")
def evidence(definitions: QuestionnaireDefinitions) -> pd.DataFrame:
    return questionnaire_evidence([read_questionnaire(POLICY_OFFICERS, definitions=definitions),
                                   read_questionnaire(MANAGERS, definitions=definitions)])


def _rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _write(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def test_questionnaire_definitions_follow_the_appendix(definitions: QuestionnaireDefinitions) -> None:
    assert definitions.names == ("beleidsmedewerker", "manager")
    policy, manager = definitions.versions
    assert [i.number for i in policy.items if i.number] == list(range(1, 23))
    assert [i.number for i in manager.items if i.number] == list(range(1, 21))
    assert policy.role == Role.BELEIDSMEDEWERKER and manager.role == Role.MANAGER
    assert policy.item("b06").options[1].text == "Ja, mijn collega(‘s)"  # as printed, curly quote included
    incentives = set(load_codebook(definitions.codebook).incentives)
    for version in definitions.versions:
        for item in version.items:
            assert (item.kind == "open") == (not item.options)
            if item.scored:
                assert item.code in incentives
                assert all(-1 <= o.score <= 1 for o in item.options if o.score is not None)
    # every closed item of both versions names the incentive it operationalises
    assert {i.code for v in definitions.versions for i in v.items if i.kind != "open"} >= set(LEADERSHIP) | {
        "informatieoverdracht", "experimenteren", "informatie_verzamelen", "analyse", "onderwijs_training",
        "visie_op_leren", "tijd_evaluatie"}


@pytest.mark.parametrize("change, message", [
    (lambda d: d["versions"]["manager"]["items"][1].update(code="leren_in_het_algemeen"), "is not an incentive"),
    (lambda d: d["versions"]["manager"]["items"][1]["options"][0].update(score=2), "must lie in [-1, 1]"),
    (lambda d: d["versions"]["manager"]["items"][2].update(id="b01"), "item id 'b01' is used twice"),
])
def test_questionnaire_definitions_reject_invalid_items(change, message: str) -> None:
    data = yaml.safe_load(questionnaires_file().read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(ConfigError) as caught:
        parse_questionnaires(data, "q.yaml")
    assert message in str(caught.value) and "q.yaml" in str(caught.value)


def test_questionnaire_read_demo_policy_officers(definitions: QuestionnaireDefinitions) -> None:
    responses = read_questionnaire(POLICY_OFFICERS, definitions=definitions)
    assert responses.version == "beleidsmedewerker" and responses.role == Role.BELEIDSMEDEWERKER
    assert sorted(responses.respondents) == ["BE", "BH", "BK", "BL", "BR", "BS", "BV", "BZ"]
    assert {r.municipality for r in responses.responses} == MUNICIPALITIES  # "gemeente Lemmerbroek" normalised
    assert responses.ignored_columns == ()
    by_code = {r.respondent: r for r in responses.responses}
    # answers the interviews refer back to ("In de vragenlijst gaf u aan ...")
    assert by_code["BK"].answer("b10").answer == "Nee"
    assert by_code["BL"].answer("b06").answer == "Nee"
    assert by_code["BR"].answer("b11").answer == "Ja, meerdere keren per jaar"
    assert by_code["BH"].answer("b11").answer == "Nee"
    assert by_code["BV"].answer("b21") is None  # left empty
    channels = by_code["BH"].answer("b04")
    assert channels.options == ("In een gesprek/vergadering", "Op een andere manier, namelijk:")
    assert channels.answer.endswith("namelijk: de maandagmail van de innovatieadviseur") and channels.score is None
    assert by_code["BR"].submitted.startswith("2026/03/05")


def test_questionnaire_read_demo_managers(definitions: QuestionnaireDefinitions) -> None:
    responses = read_questionnaire(MANAGERS, definitions=definitions)
    assert responses.version == "manager"
    assert sorted(responses.respondents) == ["ME", "MH", "MK", "ML", "MR", "MS", "MV", "MZ"]
    by_code = {r.respondent: r for r in responses.responses}
    assert by_code["MK"].answer("m08").answer == "Nee"
    assert by_code["MR"].answer("m08").answer == "Ja, voldoende"
    assert by_code["MZ"].answer("m17").answer == "Nee"
    assert by_code["ML"].answer("m04").answer == "Nee"
    # a comma inside the respondent's own words does not split the answer
    assert by_code["MH"].answer("m02").answer == ("In een gesprek/vergadering; Op een andere manier, namelijk: "
                                                  "de Pilotpost, onze maandelijkse nieuwsbrief")
    # semicolon-separated checkboxes read the same
    assert by_code["MS"].answer("m02").options == ("In een gesprek/vergadering", "Op een andere manier, namelijk:")


def test_questionnaire_unknown_option_names_row_column_and_options(tmp_path: Path) -> None:
    rows = _rows(POLICY_OFFICERS)
    header = rows[0]
    feedback = next(i for i, h in enumerate(header) if h.startswith("Vraag 10:"))
    channels = next(i for i, h in enumerate(header) if h.startswith("Vraag 2:"))
    bk = next(n for n, row in enumerate(rows) if row[1] == "BK")
    rows[bk][feedback] = "Vaak"
    rows[2][channels] = "Per post"
    with pytest.raises(QuestionnaireFormatError) as caught:
        read_questionnaire(_write(tmp_path / "bm.csv", rows))
    message = str(caught.value)
    assert str(tmp_path / "bm.csv") in message and len(caught.value.problems) == 2
    assert (f'row {bk + 1} (respondent BK), column "Vraag 10: Geeft u kritische feedback op het werk van uw '
            f'collega’s?" (item b10): unknown answer "Vaak". Allowed: "Ja", "Nee", "Soms".') in message
    assert f'row 3 (respondent {rows[2][1]}), column "Vraag 2:' in message and '"Per post"' in message
    assert "questionnaires.yaml" in message


def test_questionnaire_reads_headers_without_prefix_and_semicolons(tmp_path: Path) -> None:
    rows = _rows(MANAGERS)
    rows[0] = [h.split(": ", 1)[1] if h.startswith("Vraag ") else h for h in rows[0]]
    rows[0][2] = "Gemeente"
    rows[0] = [h.replace("’", "'") for h in rows[0]]
    rows[0].append("E-mailadres")
    rows[1:] = [row + [""] for row in rows[1:]]
    responses = read_questionnaire(_write(tmp_path / "m.csv", rows, delimiter=";"))
    assert responses.version == "manager" and responses.ignored_columns == ("E-mailadres",)
    assert questionnaire_evidence(responses).equals(questionnaire_evidence(read_questionnaire(MANAGERS)))


def test_questionnaire_wrong_version_names_missing_questions() -> None:
    with pytest.raises(QuestionnaireFormatError) as caught:
        read_questionnaire(MANAGERS, version="beleidsmedewerker")
    message = str(caught.value)
    assert "no column for question 10 (item b10)" in message and "--version" in message
    with pytest.raises(ConfigError, match="unknown questionnaire version 'zelforganiserend'"):
        read_questionnaire(MANAGERS, version="zelforganiserend")


def test_questionnaire_rejects_missing_and_duplicate_respondents(tmp_path: Path) -> None:
    rows = _rows(MANAGERS)
    rows[3][1] = rows[2][1]
    rows[4][1] = ""
    rows[5][1] = "Jan de Vries"
    with pytest.raises(QuestionnaireFormatError) as caught:
        read_questionnaire(_write(tmp_path / "m.csv", rows))
    message = str(caught.value)
    assert f"row 4 (respondent {rows[2][1]}): respondent {rows[2][1]} also answered in row 3" in message
    assert "row 5: empty respondent code" in message
    assert "is not a respondent code" in message
    gone = _rows(MANAGERS)
    gone = [row[:1] + row[2:] for row in gone]
    with pytest.raises(QuestionnaireFormatError, match="no respondent code column"):
        read_questionnaire(_write(tmp_path / "zonder-code.csv", gone))


def test_questionnaire_evidence_frame(evidence: pd.DataFrame) -> None:
    assert tuple(evidence.columns) == EVIDENCE_COLUMNS
    assert evidence["score"].dtype == float and evidence["score"].between(-1, 1).all()
    assert set(evidence["municipality"]) == MUNICIPALITIES
    assert set(evidence["role"]) == {"beleidsmedewerker", "manager"}
    # open and descriptive items are no evidence
    assert not evidence["item"].isin(["b02", "b04", "b08", "b22", "m02", "m20", "b_expertise"]).any()
    row = evidence[(evidence.respondent == "BR") & (evidence.item == "b11")].iloc[0]
    assert (row.code, row.answer, row.score) == ("onderwijs_training", "Ja, meerdere keren per jaar", 1.0)
    once_a_year = evidence[(evidence.respondent == "BZ") & (evidence.item == "b11")].score.iloc[0]
    assert once_a_year == 0.0  # a course once a year is not positive evidence (practice outweighs provision)


def test_questionnaire_evidence_matches_the_answer_key(evidence: pd.DataFrame) -> None:
    key = yaml.safe_load((ROOT / "data" / "demo" / "intended_picture.yaml").read_text(encoding="utf-8"))
    cells = evidence.groupby(["municipality", "code"])["score"].mean()
    verdicts = {cell: key["municipalities"][cell[0]]["incentives"][cell[1]] for cell in cells.index}
    voldoende = [cells[c] for c, v in verdicts.items() if v == "voldoende"]
    onvoldoende = [cells[c] for c, v in verdicts.items() if v == "onvoldoende"]
    assert len(voldoende) >= 15 and len(onvoldoende) >= 15
    assert min(voldoende) > 0 > max(onvoldoende)
    # managers judge their own leadership more kindly than their policy officers do
    leadership = evidence[evidence["code"].isin(LEADERSHIP)].groupby("role")["score"].mean()
    assert leadership["manager"] > leadership["beleidsmedewerker"] + 0.25


def test_questionnaire_summary_counts(evidence: pd.DataFrame, definitions: QuestionnaireDefinitions) -> None:
    summary = summarise(evidence, definitions=definitions).set_index("item")
    assert summary.loc["b11", "label"] == "1/8 BM"  # only BR follows courses several times a year
    assert summary.loc["b21", "label"] == "3/7 BM"  # BV left the question empty
    assert summary.loc["m15", "label"] == "8/8 M"
    assert summary.loc["b10", ["n_positive", "n_neutral", "n_negative", "n_answered"]].tolist() == [1, 3, 4, 8]
    assert summary.loc["b17", "code"] == "actief_bevragen_luisteren"
    assert summary.loc["b17", "question"] == "Stelt uw manager vragen over uw werk(zaamheden)?"
    per_code = summarise(evidence, by=("municipality", "code")).set_index(["municipality", "code"])
    assert per_code.loc[("Ravenhorst", "onderwijs_training"), "label"] == "2/2"  # BR b11 and MR m09
    assert summarise(evidence.iloc[0:0]).empty


def test_questionnaire_store_reingest_is_idempotent(any_store, tmp_path: Path, evidence: pd.DataFrame) -> None:
    policy, managers = read_questionnaire(POLICY_OFFICERS), read_questionnaire(MANAGERS)
    assert any_store.save_questionnaire(policy) == (policy.n_answers, 0)
    assert any_store.save_questionnaire(managers) == (managers.n_answers, 0)
    assert any_store.save_questionnaire(policy) == (0, 0)
    frame = any_store.questionnaire_frame()
    assert len(frame) == policy.n_answers + managers.n_answers
    assert list(frame.columns[:7]) == list(EVIDENCE_COLUMNS)
    assert stored_questionnaire_evidence(any_store).equals(evidence)
    rows = _rows(POLICY_OFFICERS)
    feedback = rows[0].index(next(h for h in rows[0] if h.startswith("Vraag 10:")))
    remark = rows[0].index(next(h for h in rows[0] if h.startswith("Vraag 22:")))
    be = next(n for n, row in enumerate(rows) if row[1] == "BE")
    rows[be][feedback] = "Ja"
    rows[be][remark] = ""  # the remark is withdrawn: its stored answer goes
    changed = read_questionnaire(_write(tmp_path / "bm.csv", rows))
    assert any_store.save_questionnaire(changed) == (0, 2)
    frame = any_store.questionnaire_frame().set_index(["respondent", "item"])
    assert frame.loc[("BE", "b10"), "score"] == 1.0 and ("BE", "b22") not in frame.index
    assert pd.isna(frame.loc[("ME", "m20"), "code"]) and pd.isna(frame.loc[("ME", "m20"), "score"])


def test_cli_ingest_questionnaire(tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "ws")]
    first = runner.invoke(cli, [*home, "ingest-questionnaire", str(MANAGERS)])
    assert first.exit_code == 0, first.output
    assert "manager questionnaire, 8 respondent(s)" in first.stdout and "145 added, 0 updated" in first.stdout
    assert "m15   actief_bevragen_luisteren    8/8 M" in first.stdout
    again = runner.invoke(cli, [*home, "ingest-questionnaire", str(MANAGERS), "--version", "manager"])
    assert again.exit_code == 0 and "0 added, 0 updated" in again.stdout
    rows = _rows(MANAGERS)
    rows[1][rows[0].index(next(h for h in rows[0] if h.startswith("Vraag 15:")))] = "Altijd"
    bad = runner.invoke(cli, [*home, "ingest-questionnaire", str(_write(tmp_path / "m.csv", rows))])
    assert bad.exit_code == 1
    assert 'row 2 (respondent ME), column "Vraag 15:' in bad.output and 'Allowed: "Ja", "Nee", "Soms"' in bad.output


def test_questionnaire_reads_xlsx_and_ignores_a_name_column(tmp_path: Path) -> None:
    from openpyxl import Workbook

    rows = _rows(POLICY_OFFICERS)
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row[:1] + ["Wat is uw naam?" if row is rows[0] else "Naam Onbekend"] + row[1:])
    workbook.save(tmp_path / "bm.xlsx")
    responses = read_questionnaire(tmp_path / "bm.xlsx")
    assert responses.ignored_columns == ("Wat is uw naam?",)
    assert questionnaire_evidence(responses).equals(questionnaire_evidence(read_questionnaire(POLICY_OFFICERS)))
    assert all("Onbekend" not in answer.answer for r in responses.responses for answer in r.answers)
