"""Privacy that holds (issue 19): no names leave the workspace, pseudonyms neither collide nor
reverse, and a forgotten respondent leaves nothing behind."""

from __future__ import annotations

import json
import logging
import os
import stat
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.corpus import (
    KEY_FILE,
    Pseudonymizer,
    import_annotations,
    ingest_paths,
    ingest_questionnaire,
    load_workspace_key,
    name_key,
    read_annotations,
    store_pseudonymizer,
)
from pipeline.codebook import load_codebook
from pipeline.config import WorkspacePaths
from pipeline.errors import ForgetError
from pipeline.privacy import REMOVED, forget, remaining_mentions
from pipeline.records import Annotation, Coding, Prediction
from pipeline.resources import seed_dir
from pipeline.store import open_store, now

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"

HEADER_NAME = "Marieke Jansen-de Vries"
SPOKEN = ("Pieter Bakker", "Sandra Wolters", "Kees Hendriksen")
NAMED = f"""Naam respondent: {HEADER_NAME}
Functie: beleidsmedewerker Wmo
Werkend bij: gemeente Aalten
Tijd interview: 3 april 2026, 14.00 uur

Onderzoeker: Hoe werkt u samen met andere organisaties?

Respondent: Mijn collega Pieter Bakker van de GGD belt ons elke week over de nieuwe werkwijze. Met Sandra Wolters van het Wmo-loket deel ik alles wat we leren.

Onderzoeker: En binnen de gemeente?

Respondent: Daar is Kees Hendriksen onze teamleider, die vraagt altijd hoe het gaat met het werk. Ik vind dat de gemeente Aalten veel leert.
"""


def _name_parts() -> list[str]:
    parts = {HEADER_NAME, "Marieke", "Jansen", "Vries"}
    for name in SPOKEN:
        parts.update([name, *name.split()])
    return sorted(parts)


@pytest.fixture()
def invoke(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli, ["--home", str(tmp_path / "ws"), *args], catch_exceptions=False)

    return run


def test_no_name_leaves_the_workspace_and_the_header_name_is_nowhere_in_the_database(
        tmp_path: Path, invoke, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "interview.txt").write_text(NAMED, encoding="utf-8")
    caplog.set_level(logging.DEBUG)
    result = invoke("-vv", "ingest", str(folder))
    assert result.exit_code == 0, result.output
    workspace = tmp_path / "ws"
    store = open_store(f"sqlite:///{workspace / 'codeer.db'}")
    utterances = list(store.iter_utterances())
    assert utterances and utterances[0].respondent == "R0001"
    # human codings, so that the report quotes the respondent's words
    book = load_codebook()
    store.add_annotations(Annotation(
        utterance_id=u.utterance_id, source_file="interview.txt", content_hash="", start=u.start, end=u.end,
        text=u.text, codings=(Coding("informatieoverdracht", "+", "practice"),), annotator="onderzoeker",
        created_at=now(), codebook_version=book.version, origin="seed") for u in utterances)
    store.close()

    assert invoke("export-qdpx", str(tmp_path / "project.qdpx")).exit_code == 0
    assert invoke("report", "--output", str(tmp_path / "reports")).exit_code == 0

    with zipfile.ZipFile(tmp_path / "project.qdpx") as archive:
        exported = "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
    assert "[PERSOON-1]" in exported  # the text itself is exported, de-identified
    reports = {path.name: path for path in (tmp_path / "reports").iterdir()}
    assert {"rapport.html", "rapport.md", "ratings.json"} <= set(reports)
    report_text = "\n".join(p.read_text(encoding="utf-8") for p in reports.values() if p.suffix in (".html", ".md", ".json", ".csv"))
    assert "[PERSOON-" in report_text  # quotes are there, de-identified
    from openpyxl import load_workbook

    cells = " ".join(str(c.value) for ws in load_workbook(reports["rapport.xlsx"]).worksheets
                     for row in ws.iter_rows() for c in row if c.value is not None)
    logs = caplog.text + result.output
    for part in _name_parts():
        assert part not in exported, part
        assert part not in report_text, part
        assert part not in cells, part
        assert part not in logs, part

    # the raw database bytes (and its write-ahead log) never hold the header's name
    raw = b"".join(path.read_bytes() for path in workspace.iterdir() if path.name.startswith("codeer.db"))
    for part in (HEADER_NAME, "Marieke", "Jansen-de Vries", *SPOKEN):
        assert part.encode("utf-8") not in raw, part
        assert part.encode("utf-16-le") not in raw, part
    # the key that makes the codes is the workspace's own, readable by its owner only
    assert stat.S_IMODE(os.stat(workspace / KEY_FILE).st_mode) == 0o600
    assert (workspace / KEY_FILE).read_text().strip() not in exported + report_text


def test_reingesting_gives_the_same_code_and_the_same_transcript(tmp_path: Path, invoke) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text(NAMED, encoding="utf-8")
    (folder / "b.txt").write_text(NAMED.replace(HEADER_NAME, "Henk de Groot"), encoding="utf-8")
    assert invoke("ingest", str(folder)).exit_code == 0
    again = invoke("ingest", str(folder))
    assert "2 unchanged" in again.output
    store = open_store(f"sqlite:///{tmp_path / 'ws' / 'codeer.db'}")
    assert sorted(t.respondent for t in store.list_transcripts()) == ["R0001", "R0002"]
    assert store.count_respondent_codes() == 2
    store.close()


def test_5000_names_get_5000_codes_that_the_name_alone_cannot_give(fresh_store) -> None:  # type: ignore[no-untyped-def]
    first = [f"{given} {family}" for given in ("Anna", "Bram", "Cor", "Daan", "Eva", "Fleur", "Gijs", "Hanna",
                                               "Ilse", "Joost")
             for family in (f"Achternaam{i:03d}" for i in range(500))]
    assert len(set(first)) == 5000
    workspace = Path(fresh_store.engine.url.database).parent
    pseudonyms = store_pseudonymizer(fresh_store)
    codes = [pseudonyms.code_for_name(name) for name in first]
    assert len(set(codes)) == 5000
    assert codes[0] == "R0001" and codes[-1] == "R5000"
    # the same name again: the same code; case and spacing do not make another person
    assert pseudonyms.code_for_name("anna  ACHTERNAAM000") == codes[0]
    # the code is a counter, not a function of the name: another workspace (another key, another
    # order) gives the same name another code, and the registry keys differ without the key
    other = Pseudonymizer.ephemeral()
    assert [other.code_for_name(name) for name in reversed(first)][-1] == "R5000" != codes[0]
    key = load_workspace_key(workspace / KEY_FILE, create=False)
    assert name_key("name:Anna Achternaam000", key) != name_key("name:Anna Achternaam000", b"\x00" * 32)
    # nothing in the registry is the name or a plain hash of it
    import hashlib

    assert fresh_store.rows_mentioning("respondent_codes", "Anna") == 0
    assert fresh_store.rows_mentioning("respondent_codes", hashlib.sha256(b"name:anna achternaam000").hexdigest()) == 0


@pytest.fixture()
def demo_workspace(tmp_path: Path, segmenter):  # type: ignore[no-untyped-def]
    """The demo ingested with its seed annotations and questionnaires, predictions and review
    items of a fake model, cached embeddings and report files that quote BE."""
    workspace = tmp_path / "ws"
    store = open_store(f"sqlite:///{workspace / 'codeer.db'}")
    report = ingest_paths([DEMO], store, segmenter)
    assert not report.failed
    book = load_codebook()
    imported = import_annotations(read_annotations(sorted(seed_dir().glob("*.jsonl")), book), store)
    assert not imported.problems
    for name in ("beleidsmedewerkers.csv", "managers.csv"):
        ingest_questionnaire(DEMO / "questionnaires" / name, store)
    utterances = list(store.iter_utterances())
    store.save_predictions([Prediction(u.utterance_id, "fake-model", "analyse", 0.3, False, "0", 0.5)
                            for u in utterances])
    from pipeline.review import enqueue

    assert enqueue(store, [Prediction(u.utterance_id, "fake-model", "analyse", 0.3, False, "0", 0.5)
                           for u in utterances if u.respondent == "BE"], {"analyse": 0.5},
                   model_id="fake-model", rating_impact={}) > 0
    from pipeline.review import accept, claim_next

    claimed = claim_next(store, "annotator", 2, diversity=False)
    for item in claimed:
        accept(store, item.item_id, "annotator", version=item.version, codebook=book)
    assert claimed
    paths = WorkspacePaths(workspace)
    from pipeline.coding import EmbeddingCache
    from pipeline.coding.embed import cache_key

    import numpy as np

    cache = EmbeddingCache(paths.embedding_cache_file)
    cache.put_many({cache_key("enc", u.text): np.ones(4, dtype=np.float32) for u in utterances}, "enc", 4)
    cache.close()
    be = [u for u in utterances if u.respondent == "BE" and len(u.text) > 60]
    paths.reports_dir.mkdir(parents=True)
    (paths.reports_dir / "ratings.json").write_text(json.dumps(
        {"quotes": [{"respondent": "BE", "text": be[0].text}, {"respondent": "BH", "text": "Iets anders."}]},
        ensure_ascii=False), encoding="utf-8")
    (paths.reports_dir / "rapport.md").write_text(f"> “{be[1].text[:50]} …” (BE)\n", encoding="utf-8")
    return store, paths, utterances


def test_forgetting_a_demo_respondent_leaves_nothing_of_it(demo_workspace) -> None:  # type: ignore[no-untyped-def]
    store, paths, utterances = demo_workspace
    gone = [u for u in utterances if u.respondent == "BE"]
    kept = [u for u in utterances if u.respondent != "BE"]
    transcript_ids = sorted({u.transcript_id for u in gone})
    assert gone and store.count_rows("annotations") > 0

    result = forget(store, paths, respondent="BE")

    assert result.rows["transcripts"] == len(transcript_ids) and result.rows["utterances"] == len(gone)
    assert result.rows["annotations"] > 0 and result.rows["review_items"] > 0 and result.rows["review_decisions"] > 0
    assert result.rows["questionnaire_answers"] > 0
    # every text of BE goes from the cache (a text another respondent also said is simply encoded again)
    assert result.cached_embeddings == len({u.text for u in gone})
    from pipeline.coding import EmbeddingCache

    cache = EmbeddingCache(paths.embedding_cache_file)
    assert len(cache) == len({u.text for u in utterances}) - len({u.text for u in gone})
    cache.close()
    assert sorted(result.report_files) == ["rapport.md", "ratings.json"]
    assert result.stale_municipalities == ("Eschveld",)
    # nothing of it in any table: not its ids, not its code as a value, not its words
    assert remaining_mentions(store, [*transcript_ids, *(u.utterance_id for u in gone)]) == {}
    import sqlalchemy as sa

    with store.engine.connect() as connection:
        for table in store.table_names():
            for column in sa.inspect(store.engine).get_columns(table):
                n = connection.execute(sa.text(f'SELECT COUNT(*) FROM "{table}" WHERE "{column["name"]}" = :v'),
                                       {"v": "BE"}).scalar()
                assert n == 0, (table, column["name"])
    for u in gone:
        if len(u.text) >= 40 and all(u.text != k.text for k in kept):
            assert store.rows_mentioning("utterances", u.text) == 0
    # the other respondents are untouched
    assert len(list(store.iter_utterances())) == len(kept)
    # the quotes are scrubbed, the other respondent's quote stays
    ratings = json.loads((paths.reports_dir / "ratings.json").read_text(encoding="utf-8"))
    assert ratings["quotes"][0]["text"] == REMOVED and ratings["quotes"][1]["text"] == "Iets anders."
    assert REMOVED in (paths.reports_dir / "rapport.md").read_text(encoding="utf-8")
    assert store.stale_ratings() == {"Eschveld": "respondent BE forgotten"}
    with pytest.raises(ForgetError):
        forget(store, paths, respondent="BE")
    store.close()


def test_forget_a_transcript_by_source_and_from_the_command_line(tmp_path: Path, invoke) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text(NAMED, encoding="utf-8")
    assert invoke("ingest", str(folder)).exit_code == 0
    result = invoke("forget", "--transcript", "a.txt", "--yes")
    assert result.exit_code == 0, result.output
    assert "transcripts: 1 row(s) deleted" in result.output and "Aalten" in result.output
    missing = invoke("forget", "--transcript", "a.txt", "--yes")
    assert missing.exit_code == 1 and "no transcript a.txt" in missing.output
    assert "Traceback" not in missing.output


def test_upgrading_a_workspace_from_before_deidentification_says_what_to_do(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    from pipeline.store.database import MIGRATIONS

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'codeer.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        connection.execute(sa.text(
            "INSERT INTO transcripts (id, source, path, content_hash, file_format, encoding, kind, municipality, "
            "respondent, role, text, status, ingested_at) VALUES ('t1', 'a.txt', 'a.txt', 'h', 'txt', 'utf-8', "
            "'interview', 'Aalten', 'X1A2B', 'other', 'Naam respondent: Jan', 'active', 'now')"))
    engine.dispose()
    caplog.set_level(logging.WARNING)
    store = open_store(f"sqlite:///{tmp_path / 'codeer.db'}")
    assert "1 transcript version(s) stored before de-identification" in caplog.text
    assert "1 respondent code(s) derived from names" in caplog.text and "codeer forget --transcript" in caplog.text
    assert store.count_respondent_codes() == 0
    store.close()


def test_a_qdpx_import_is_deidentified_and_its_codings_land_on_the_moved_words(
        fresh_store, segmenter, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.qda import import_qdpx, load_qda_mapping

    source_guid, code_guid, user_guid = ("5A000000-0000-4000-8000-000000000001", "C0000000-0000-4000-8000-000000000001",
                                         "0E000000-0000-4000-8000-000000000001")
    text = ("Onderzoeker: Hoe gaat het met het werk?\n\nRespondent: Volgens Pieter Bakker van de GGD gaat het goed. "
            "De werkdruk is echt te hoog.\n")
    phrase = "De werkdruk is echt te hoog."
    start = text.index(phrase)
    qde = f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="p" origin="NVivo 14">
 <Users><User guid="{user_guid}" name="Onderzoeker A"/></Users>
 <CodeBook><Codes><Code guid="{code_guid}" name="Werkdruk" isCodable="true"/></Codes></CodeBook>
 <Variables><Variable guid="7A000000-0000-4000-8000-000000000002" name="Respondent" typeOfVariable="Text"/></Variables>
 <Sources><TextSource guid="{source_guid}" name="interview.txt" plainTextPath="internal://{source_guid}.txt">
  <PlainTextSelection guid="5E1E0000-0000-4000-8000-000000000001" name="Reference 1" startPosition="{start}"
      endPosition="{start + len(phrase)}" creatingUser="{user_guid}"><Coding guid="C0D10000-0000-4000-8000-000000000001"
      creatingUser="{user_guid}"><CodeRef targetGUID="{code_guid}"/></Coding></PlainTextSelection>
  <VariableValue><VariableRef targetGUID="7A000000-0000-4000-8000-000000000002"/><TextValue>Marieke de Vries</TextValue></VariableValue>
 </TextSource></Sources>
</Project>"""
    archive = tmp_path / "p.qdpx"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("project.qde", qde.encode("utf-8"))
        z.writestr(f"sources/{source_guid}.txt", text.encode("utf-8"))
    mapping = tmp_path / "map.yaml"
    mapping.write_text('codebook_version: garvin2008\ncodes:\n  Werkdruk: {code: tijd_evaluatie, direction: "-"}\n',
                       encoding="utf-8")
    book = load_codebook()
    report = import_qdpx(archive, fresh_store, segmenter, book, load_qda_mapping(mapping, book))
    assert report.n_codings_added == 1, (report.problems, report.notes)
    (transcript,) = fresh_store.list_transcripts()
    stored, _, _ = fresh_store.transcript_text(transcript.transcript_id)
    assert "Pieter" not in stored and "Bakker" not in stored and "[PERSOON-1] van de GGD gaat" in stored
    assert transcript.respondent == "R0001" and fresh_store.rows_mentioning("transcripts", "Marieke") == 0
    ((utterance, codings, _, _),) = list(fresh_store.iter_annotated())
    assert utterance.text == phrase and codings[0].code == "tijd_evaluatie"
