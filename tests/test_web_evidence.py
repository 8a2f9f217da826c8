"""The researcher's and annotator's pages (issue 21): the transcript with codes in the margin,
coding a selection, fragments per code and municipality, queue filters, reasons and progress in words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline import review
from pipeline.codebook import load_codebook
from pipeline.corpus.ingest import ingest_paths
from pipeline.records import Annotation, Coding, Prediction, ReviewStatus
from pipeline.review.users import add_user
from pipeline.review.web import create_app

PASSWORD = "een-lang-wachtwoord"
SECOND = """Naam respondent: MZ
Functie: manager sociaal domein
Werkend bij: gemeente Zuiderveen

Onderzoeker: Hoe gaat het met opleidingen?

Respondent: Iedereen volgt hier elk jaar een cursus. Het budget daarvoor is ruim.
"""


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


@pytest.fixture()
def store(sqlite_review_store, segmenter, tmp_path: Path):
    """Two municipalities; model m1 predicts tijd_evaluatie weakly everywhere, analyse on one sentence."""
    path = tmp_path / "MZ.txt"
    path.write_text(SECOND, encoding="utf-8")
    assert not ingest_paths([path], sqlite_review_store, segmenter).failed
    utterances = list(sqlite_review_store.iter_utterances())
    predictions = []
    for u in utterances:
        top = "onderwijs_training" if u.municipality == "Zuiderveen" else "tijd_evaluatie"
        predictions += [Prediction(u.utterance_id, "m1", top, 0.42, True, "-", 0.6),
                        Prediction(u.utterance_id, "m1", "analyse", 0.1, False)]
    sqlite_review_store.save_predictions(predictions)
    review.enqueue(sqlite_review_store, predictions, {"tijd_evaluatie": 0.4, "onderwijs_training": 0.4}, model_id="m1")
    add_user(sqlite_review_store, "anna", "annotator", PASSWORD)
    return sqlite_review_store


def client_for(store, **kwargs) -> TestClient:
    client = TestClient(create_app(store, load_codebook(), secret_key="test", secure_cookies=False, **kwargs))
    token = csrf(client.get("/login").text)
    response = client.post("/login", data={"name": "anna", "password": PASSWORD, "csrf_token": token, "next": "/queue"},
                           follow_redirects=False)
    assert response.status_code == 303
    return client


def first_transcript(store, municipality: str = "Testerveen"):
    utterances = sorted((u for u in store.iter_utterances() if u.municipality == municipality), key=lambda u: u.position)
    return utterances[0].transcript_id, utterances


def test_transcript_page_shows_codes_in_the_margin_and_no_header(store) -> None:
    transcript_id, utterances = first_transcript(store)
    target = utterances[0]
    store.add_annotations([Annotation(target.utterance_id, "BQ-review.txt", "h", target.start, target.end, target.text,
                                      (Coding("tijd_evaluatie", "-", "practice"),), "seed-coder", "2026-01-01",
                                      "garvin2008", origin="seed")])
    page = client_for(store).get(f"/transcripts/{transcript_id}").text
    for u in utterances:
        assert f'id="u{u.utterance_id}"' in page
    line = page.split(f'id="u{target.utterance_id}"', 1)[1].split('class="line"', 1)[0]
    assert 'data-source="mens"' in line and "seed-coder" in line and "praktijk" in line
    # the model's code on a human-labelled utterance is shown but does not count
    assert "telt niet" in line
    other = page.split(f'id="u{utterances[1].utterance_id}"', 1)[1].split('class="line"', 1)[0]
    assert 'data-source="model"' in other and "42%" in other and "telt niet" not in other
    assert "Functie" not in page and "beleidsmedewerker Wmo" not in page and "Tijd interview" not in page
    assert "Hoe ervaart u de werkdruk?" in page  # the interviewer's question, once
    assert page.count("Hoe ervaart u de werkdruk?") == 1


def test_transcripts_index_links_every_transcript_by_respondent_code(store) -> None:
    page = client_for(store).get("/transcripts").text
    for municipality in ("Testerveen", "Zuiderveen"):
        transcript_id, _ = first_transcript(store, municipality)
        assert f'href="/transcripts/{transcript_id}"' in page
    assert "BQ-review.txt" not in page and "MZ.txt" not in page  # file names may carry names


def test_transcript_page_of_unknown_transcript_is_404(store) -> None:
    response = client_for(store).get("/transcripts/no-such-transcript")
    assert response.status_code == 404 and "does not exist" in response.text


def test_coding_a_selection_stores_a_review_annotation_with_audit_and_undo(store) -> None:
    transcript_id, utterances = first_transcript(store)
    target = utterances[2]
    client = client_for(store)
    page = client.get(f"/transcripts/{transcript_id}").text
    posted = client.post(f"/transcripts/{transcript_id}/code", data={
        "csrf_token": csrf(page), "utterance_id": target.utterance_id, "code": "onderwijs_training",
        "direction": "+", "facet": "provision", "span_start": "3", "span_end": "12"}, follow_redirects=False)
    assert posted.headers["location"] == f"/transcripts/{transcript_id}#u{target.utterance_id}"
    found = {u.utterance_id: (codings, who) for u, codings, who, _ in store.iter_annotated(["review"])}
    assert found == {target.utterance_id: ((Coding("onderwijs_training", "+", "provision"),), "anna")}
    decision = store.list_review_decisions()[0]
    assert (decision.action, decision.user) == ("correct", "anna") and "tekens 3-12" in decision.note
    # a second code on the same utterance joins the first
    client.post(f"/transcripts/{transcript_id}/code", data={
        "csrf_token": csrf(page), "utterance_id": target.utterance_id, "code": "analyse", "direction": "-"})
    found = {u.utterance_id: codings for u, codings, _, _ in store.iter_annotated(["review"])}
    assert {c.code for c in found[target.utterance_id]} == {"onderwijs_training", "analyse"}
    shown = client.get(f"/transcripts/{transcript_id}").text
    assert "mijn code analyse verwijderen" in shown
    # undo takes back the last one and leads back to the transcript
    undone = client.post("/undo", data={"csrf_token": csrf(shown)}, follow_redirects=False)
    assert undone.headers["location"] == f"/transcripts/{transcript_id}#u{target.utterance_id}"
    found = {u.utterance_id: codings for u, codings, _, _ in store.iter_annotated(["review"])}
    assert found[target.utterance_id] == (Coding("onderwijs_training", "+", "provision"),)
    # remove the remaining code
    client.post(f"/transcripts/{transcript_id}/code", data={
        "csrf_token": csrf(shown), "utterance_id": target.utterance_id, "code": "onderwijs_training",
        "direction": "+", "remove": "1"})
    assert list(store.iter_annotated(["review"])) == []
    # the hand-coding item never shows up in anyone's queue
    assert all(i.model_id == "m1" for i in store.list_review_items([ReviewStatus.PENDING]))


def test_coding_a_selection_outside_the_utterance_is_refused_with_a_message(store) -> None:
    transcript_id, utterances = first_transcript(store)
    client = client_for(store)
    page = client.get(f"/transcripts/{transcript_id}").text
    response = client.post(f"/transcripts/{transcript_id}/code", data={
        "csrf_token": csrf(page), "utterance_id": utterances[0].utterance_id, "code": "analyse", "direction": "+",
        "span_start": "5", "span_end": "9999"}, follow_redirects=True)
    assert "lies outside utterance" in response.text
    unknown = client.post(f"/transcripts/{transcript_id}/code", data={
        "csrf_token": csrf(page), "utterance_id": utterances[0].utterance_id, "code": "geen_code", "direction": "+"},
        follow_redirects=True)
    assert "unknown code" in unknown.text
    assert list(store.iter_annotated(["review"])) == []


def test_fragments_view_lists_the_evidence_with_links(store) -> None:
    _, utterances = first_transcript(store)
    labelled = utterances[0]
    store.add_annotations([Annotation(labelled.utterance_id, "BQ-review.txt", "h", labelled.start, labelled.end,
                                      labelled.text, (Coding("analyse", "+"),), "seed-coder", "2026-01-01",
                                      "garvin2008", origin="seed")])
    client = client_for(store)
    page = client.get("/fragments", params={"code": "tijd_evaluatie", "municipality": "Testerveen"}).text
    rows = re.findall(r'<tr class="fragment" data-source="(\w+)">', page)
    # every utterance but the human-labelled one (a person said: analyse, not tijd_evaluatie)
    assert rows == ["model"] * (len(utterances) - 1)
    assert f'href="/transcripts/{utterances[1].transcript_id}#u{utterances[1].utterance_id}"' in page
    assert "42%" in page and "BQ" in page
    human = client.get("/fragments", params={"code": "analyses", "municipality": "Testerveen"}).text  # a label works
    assert re.findall(r'<tr class="fragment" data-source="(\w+)">', human) == ["mens"]
    assert "seed-coder" in human and "1 door een mens gecodeerd" in human
    assert "Zuiderveen" in client.get("/fragments").text  # the municipality choice


def test_queue_filters_narrow_the_list_and_the_claims(store) -> None:
    client = client_for(store)
    everything = client.get("/queue").text
    assert everything.count('class="queue-row"') == store.review_status_counts()["pending"]
    narrowed = client.get("/queue", params={"filter": "1", "municipality": "Zuiderveen", "respondent": "",
                                            "code": ""}).text
    municipalities = set(re.findall(r'class="queue-row" data-municipality="(\w+)"', narrowed))
    assert municipalities == {"Zuiderveen"}
    started = client.post("/claim", data={"csrf_token": csrf(narrowed)}, follow_redirects=False)
    item_id = started.headers["location"].removeprefix("/item/")
    claimed = store.review_items_by_id([item_id])[item_id]
    assert store.utterances_by_id([claimed.utterance_id])[claimed.utterance_id].municipality == "Zuiderveen"
    assert all(store.utterances_by_id([i.utterance_id])[i.utterance_id].municipality == "Zuiderveen"
               for i in store.list_review_items([ReviewStatus.CLAIMED], claimed_by="anna"))
    # a code filter by its Dutch label; the suggestion column names the predicted code
    by_code = client.get("/queue", params={"filter": "1", "municipality": "", "respondent": "",
                                           "code": "tijd (voor evaluatie)"}).text
    assert set(re.findall(r'class="queue-row" data-municipality="(\w+)"', by_code)) == {"Testerveen"}
    assert 'data-code="tijd_evaluatie"' in by_code
    cleared = client.get("/queue", params={"filter": "1"}).text
    assert 'id="clear-filter"' not in cleared


def test_queue_and_item_speak_plain_dutch_with_the_codebook_at_hand(store) -> None:
    client = client_for(store, review_budget=40)
    queue_page = client.get("/queue").text
    assert "near_threshold" not in queue_page and "priority" not in queue_page
    assert "een code zit precies op de grens" in queue_page
    n_open = store.review_status_counts()["pending"]
    assert f"0 van 40 gedaan vandaag (doel voor vannacht), {n_open} open" in queue_page
    started = client.post("/claim", data={"csrf_token": csrf(queue_page)}, follow_redirects=False)
    item_page = client.get(started.headers["location"]).text
    assert "near_threshold" not in item_page and "× impact" not in item_page
    codebook = load_codebook()
    # definitions, include and exclude text of every codable code, grouped by building block
    for code_id in codebook.codable:
        assert f'id="info-{code_id}"' in item_page
    definition = codebook["psychologische_veiligheid"].definition_nl
    assert definition.split()[0] in item_page
    groups = re.findall(r'<details class="code-group" data-group="(\w+)"', item_page)
    assert groups[:3] == ["ondersteunende_leeromgeving", "concrete_leerprocessen", "leiderschap"]
    assert "Wel:" in item_page and "Niet:" in item_page
    plain = client_for(store).get("/queue").text
    assert f"0 gedaan vandaag, {n_open} open" in plain
