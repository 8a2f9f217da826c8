"""Ingest and loading faults (issue 20): renames reported as renames with one stable source,
hidden files listed as skipped, corrupt .docx files named with a real message, model files that
are not skops archives, and workspace files private to the user."""

from __future__ import annotations

import json
import pickle
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pipeline.coding.models import CLASSIFIER_FILE, load_model_folder
from pipeline.corpus import ingest_paths
from pipeline.errors import ModelFileError
from pipeline.resources import packaged_models_dir
from pipeline.store import open_store

CODEER = str(Path(sys.executable).parent / "codeer")
INTERVIEW = ("Gemeente: Testerveen\n\nOnderzoeker: Hoe gaat het met de werkdruk?\n\n"
             "Respondent: De werkdruk is hoog. We evalueren weinig.\n")


def _statuses(report) -> list[tuple[str, str, str | None]]:
    return [(Path(r.path).name, r.status, r.reason) for r in report.results]


def _sources(store) -> list[str]:
    return [t.source for t in store.list_transcripts()]


def test_ingest_rename_is_reported_and_the_source_follows_the_file(fresh_store, segmenter, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "BA.txt").write_text(INTERVIEW, encoding="utf-8")
    assert _statuses(ingest_paths([folder], fresh_store, segmenter)) == [("BA.txt", "new", None)]
    (folder / "BA.txt").rename(folder / "BA-definitief.txt")
    report = ingest_paths([folder], fresh_store, segmenter)
    assert _statuses(report) == [("BA-definitief.txt", "renamed", "renamed from BA.txt")]
    assert report.results[0].n_utterances > 0
    assert _sources(fresh_store) == ["BA-definitief.txt"]
    assert fresh_store.count_rows("transcripts") == 1
    assert _statuses(ingest_paths([folder], fresh_store, segmenter)) == [("BA-definitief.txt", "unchanged", None)]


def test_ingest_copy_is_a_duplicate_and_the_source_never_flips(fresh_store, segmenter, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "BA.txt").write_text(INTERVIEW, encoding="utf-8")
    ingest_paths([folder], fresh_store, segmenter)
    shutil.copy(folder / "BA.txt", folder / "kopie.txt")
    for _ in range(3):  # each ingest gives the same answer; the stored source stays the first name
        report = ingest_paths([folder], fresh_store, segmenter)
        assert _statuses(report) == [("BA.txt", "unchanged", None), ("kopie.txt", "duplicate", "same content as BA.txt")]
        assert _sources(fresh_store) == ["BA.txt"]


def test_ingest_hidden_files_are_listed_as_skipped(fresh_store, segmenter, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "a.txt").write_text(INTERVIEW, encoding="utf-8")
    (folder / ".git" / "b.txt").write_text(INTERVIEW, encoding="utf-8")
    (folder / "BA.txt").write_text(INTERVIEW, encoding="utf-8")
    (folder / ".BM.txt").write_text(INTERVIEW, encoding="utf-8")
    (folder / "~$BA.docx").write_bytes(b"lock")
    report = ingest_paths([folder], fresh_store, segmenter)
    assert _statuses(report) == [("BA.txt", "new", None), (".BM.txt", "skipped", "a hidden file"),
                                 (".git", "skipped", "a hidden folder"), ("~$BA.docx", "skipped", "an Office lock file")]
    assert not report.failed


@pytest.mark.parametrize(("members", "message"), [
    (None, "not a readable ZIP archive, so not a Word document"),
    ({"word/document.xml": b"<w:document/>"}, "the part '[Content_Types].xml' is missing"),
    ({"[Content_Types].xml": b"<Types xmlns='urn:x'/>"}, "not a Word document"),
])
def test_ingest_corrupt_docx_says_what_is_wrong(fresh_store, segmenter, tmp_path: Path, members, message) -> None:
    path = tmp_path / "kapot.docx"
    if members is None:
        path.write_bytes(b"dit is geen zip")
    else:
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    [result] = ingest_paths([path], fresh_store, segmenter).results
    assert result.status == "failed" and result.reason == "corrupt document"
    assert message in result.error and "kapot.docx" in result.error and "(KeyError)" not in result.error


def test_ingest_pickle_named_classifier_skops_is_a_message(tmp_path: Path) -> None:
    packaged = next(p for p in packaged_models_dir().iterdir() if (p / "card.json").is_file())
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(packaged / "card.json", folder / "card.json")
    (folder / CLASSIFIER_FILE).write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(ModelFileError, match="not a readable skops file .*Nothing in it was run"):
        load_model_folder(folder)
    (folder / "card.json").write_text("{kapot", encoding="utf-8")
    with pytest.raises(ModelFileError, match="card.json: not a readable model card"):
        load_model_folder(folder)
    (folder / "card.json").write_text(json.dumps({"model_id": "x"}), encoding="utf-8")
    with pytest.raises(ModelFileError, match="lacks codebook_version, encoder_id"):
        load_model_folder(folder)


def test_ingest_pickle_model_on_the_command_line_has_no_traceback(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    packaged = next(p for p in packaged_models_dir().iterdir() if (p / "card.json").is_file())
    shutil.copy(packaged / "card.json", folder / "card.json")
    (folder / CLASSIFIER_FILE).write_bytes(pickle.dumps([1, 2, 3]))
    texts = tmp_path / "in.jsonl"
    texts.write_text(json.dumps({"id": "1", "text": "De werkdruk is hoog."}) + "\n", encoding="utf-8")
    done = subprocess.run([CODEER, "--home", str(tmp_path / "werk"), "classify", str(texts), "--output", str(tmp_path / "o.jsonl"),
                           "--model", str(folder)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Error:" in done.stderr and "not a readable skops file" in done.stderr
    assert "Traceback" not in done.stderr


def test_ingest_workspace_files_are_private(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'nieuw' / 'codeer.db'}")
    store.close()
    assert stat.S_IMODE((tmp_path / "nieuw" / "codeer.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "nieuw").stat().st_mode) == 0o700
    password = tmp_path / "pw"
    password.write_text("een-lang-wachtwoord\n", encoding="utf-8")
    home = tmp_path / "werk"
    done = subprocess.run([CODEER, "--home", str(home), "users", "add", "anna",
                           "--password-file", str(password)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in [home, *home.rglob("*")]}
    assert modes["werk"] == 0o700 and modes["codeer.db"] == 0o600
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes
