"""A real headless Chromium on the review page: log in, accept one item, correct another by keyboard.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``); skips with that hint where they are missing.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from pipeline import review
from pipeline.codebook import load_codebook
from pipeline.records import Coding, Prediction, ReviewStatus
from pipeline.review.users import add_user
from pipeline.review.web import create_app

pytestmark = pytest.mark.browser

PASSWORD = "browser-wachtwoord"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture()
def server(sqlite_review_store):
    """The review app under uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    store = sqlite_review_store
    utterances = sorted(store.iter_utterances(), key=lambda u: u.position)
    predictions = []
    for u in utterances:
        unsure = u.position in (1, 4)
        predictions += [Prediction(u.utterance_id, "m1", "tijd_evaluatie", 0.42 if unsure else 0.02, unsure,
                                   "-" if unsure else None, 0.9 if unsure else None),
                        Prediction(u.utterance_id, "m1", "analyse", 0.30 if unsure else 0.01, False)]
    store.save_predictions(predictions)
    assert review.enqueue(store, predictions, {"tijd_evaluatie": 0.4, "analyse": 0.5}, model_id="m1") == 2
    add_user(store, "anna", "annotator", PASSWORD)
    app = create_app(store, load_codebook(), secret_key="browser-test", secure_cookies=False)
    port = _free_port()
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if uvicorn_server.started:
            break
        time.sleep(0.05)
    assert uvicorn_server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", store
    uvicorn_server.should_exit = True
    thread.join(10)


def test_web_browser_accept_and_keyboard_correction(server, browser) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    base, store = server
    wait = WebDriverWait(browser, 20)

    def press(*keys: str) -> None:
        chain = ActionChains(browser)
        for key in keys:
            chain.send_keys(key)
        chain.perform()

    browser.get(f"{base}/queue")
    wait.until(lambda d: "/login" in d.current_url)
    browser.find_element(By.ID, "name").send_keys("anna")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    wait.until(lambda d: d.current_url.endswith("/queue"))
    assert "0 gedaan vandaag, 2 open" in browser.find_element(By.ID, "progress").text

    browser.find_element(By.ID, "start").click()
    wait.until(lambda d: "/item/" in d.current_url)
    first = browser.current_url.rsplit("/", 1)[1]
    assert browser.find_element(By.ID, "utterance").text
    press("a")  # accept the suggestion
    wait.until(lambda d: "/item/" in d.current_url and not d.current_url.endswith(first))
    second = browser.current_url.rsplit("/", 1)[1]
    assert "1 gedaan vandaag, 1 open" in browser.find_element(By.ID, "progress").text

    # suggestion 1 is tijd_evaluatie (checked), 2 is analyse: take analyse with +, drop tijd_evaluatie
    press("2", "+", "1")
    boxes = {b.get_attribute("value"): b.is_selected() for b in browser.find_elements(By.NAME, "code")}
    assert boxes["analyse"] and not boxes["tijd_evaluatie"]
    press(Keys.ENTER)
    wait.until(lambda d: d.current_url.endswith("/queue"))
    assert "2 gedaan vandaag, niets meer open" in browser.find_element(By.ID, "progress").text

    items = store.review_items_by_id([first, second])
    assert (items[first].status, items[first].decided_by) == (ReviewStatus.ACCEPTED, "anna")
    assert (items[second].status, items[second].decided_by) == (ReviewStatus.CORRECTED, "anna")
    found = {u.utterance_id: (codings, annotator) for u, codings, annotator, _ in store.iter_annotated(["review"])}
    assert found[items[first].utterance_id] == ((Coding("tijd_evaluatie", "-"),), "anna")
    assert found[items[second].utterance_id] == ((Coding("analyse", "+"),), "anna")


SECOND_INTERVIEW = """Naam respondent: MZ
Functie: manager sociaal domein
Werkend bij: gemeente Zuiderveen

Onderzoeker: Hoe gaat het met opleidingen?

Respondent: Iedereen volgt hier elk jaar een cursus. Het budget daarvoor is ruim. Maar tijd om te evalueren is er nooit.
"""


@pytest.fixture()
def two_municipalities(sqlite_review_store, segmenter, tmp_path: Path):
    """Testerveen (the review interview) and Zuiderveen, every utterance weakly coded tijd_evaluatie."""
    from pipeline.corpus.ingest import ingest_paths

    path = tmp_path / "MZ.txt"
    path.write_text(SECOND_INTERVIEW, encoding="utf-8")
    assert not ingest_paths([path], sqlite_review_store, segmenter).failed
    predictions = []
    for u in sqlite_review_store.iter_utterances():
        predictions += [Prediction(u.utterance_id, "m1", "tijd_evaluatie", 0.42, True, "-", 0.9),
                        Prediction(u.utterance_id, "m1", "analyse", 0.30, False)]
    sqlite_review_store.save_predictions(predictions)
    review.enqueue(sqlite_review_store, predictions, {"tijd_evaluatie": 0.4, "analyse": 0.5}, model_id="m1",
                   batch_diversity=False)
    add_user(sqlite_review_store, "anna", "annotator", PASSWORD)
    return sqlite_review_store


@pytest.fixture()
def annotator_server(two_municipalities):
    import uvicorn

    app = create_app(two_municipalities, load_codebook(), secret_key="browser-test", secure_cookies=False,
                     review_budget=3)
    port = _free_port()
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if uvicorn_server.started:
            break
        time.sleep(0.05)
    assert uvicorn_server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", two_municipalities
    uvicorn_server.should_exit = True
    thread.join(10)


def _log_in(browser, base: str, wait) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/queue")
    wait.until(lambda d: "/login" in d.current_url)
    browser.find_element(By.ID, "name").send_keys("anna")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    wait.until(lambda d: d.current_url.endswith("/queue"))


def test_web_browser_annotator_keyboard_flow_with_filter_codebook_and_undo(annotator_server, browser) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    base, store = annotator_server
    wait = WebDriverWait(browser, 20)

    def press(*keys: str) -> None:
        chain = ActionChains(browser)
        for key in keys:
            chain.send_keys(key)
        chain.perform()

    def municipality_of(item_id: str) -> str:
        item = store.review_items_by_id([item_id])[item_id]
        return store.utterances_by_id([item.utterance_id])[item.utterance_id].municipality

    _log_in(browser, base, wait)
    n_open = store.review_status_counts()["pending"]
    assert browser.find_element(By.ID, "progress").text == f"0 van 3 gedaan vandaag (doel voor vannacht), {n_open} open"
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.queue-row")
    assert {r.get_attribute("data-municipality") for r in rows} == {"Testerveen", "Zuiderveen"}
    assert "grens van wel of niet toekennen" in rows[0].find_element(By.CSS_SELECTOR, "td.why").text
    assert "Tijd (voor evaluatie)" in rows[0].find_element(By.CSS_SELECTOR, "td.suggestion").text

    # filter by keyboard: f jumps to the municipality field, Enter applies
    press("f")
    assert browser.switch_to.active_element.get_attribute("id") == "filter-municipality"
    press("Zuiderveen", Keys.ENTER)
    wait.until(lambda d: "municipality=Zuiderveen" in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.queue-row")
    assert rows and {r.get_attribute("data-municipality") for r in rows} == {"Zuiderveen"}

    # Enter starts reviewing in that part of the queue
    browser.find_element(By.TAG_NAME, "body").click()
    press(Keys.ENTER)
    wait.until(lambda d: "/item/" in d.current_url)
    first = browser.current_url.rsplit("/", 1)[1]
    assert municipality_of(first) == "Zuiderveen"
    assert "grens van wel of niet toekennen" in browser.find_element(By.ID, "why").text

    # the codebook at hand: toggling a code by key shows its definition, include and exclude text
    press("1")
    info = browser.find_element(By.ID, "info-tijd_evaluatie")
    assert info.is_displayed() and "Wel:" in info.text and "Niet:" in info.text
    assert not browser.find_element(By.ID, "info-analyse").is_displayed()
    press("1")  # toggle back: the suggestion stands
    ActionChains(browser).move_to_element(browser.find_element(By.CSS_SELECTOR, 'tr.code-row[data-code="analyse"]')).perform()
    wait.until(lambda d: d.find_element(By.ID, "info-analyse").is_displayed())
    groups = [g.get_attribute("data-group") for g in browser.find_elements(By.CSS_SELECTOR, "details.code-group")]
    assert groups[:3] == ["ondersteunende_leeromgeving", "concrete_leerprocessen", "leiderschap"]

    press("a")  # accept
    wait.until(lambda d: "/item/" in d.current_url and not d.current_url.endswith(first))
    second = browser.current_url.rsplit("/", 1)[1]
    assert municipality_of(second) == "Zuiderveen"
    assert browser.find_element(By.ID, "progress").text.startswith("1 van 3 gedaan vandaag")

    press("2", "+", "1", Keys.ENTER)  # correct: analyse +, not tijd_evaluatie
    wait.until(lambda d: not d.current_url.endswith(second))
    assert store.review_items_by_id([second])[second].status == ReviewStatus.CORRECTED

    browser.find_element(By.TAG_NAME, "body").click()
    press("u")  # undo the correction: back on that item, claimed again
    wait.until(lambda d: d.current_url.endswith(f"/item/{second}"))
    assert store.review_items_by_id([second])[second].status == ReviewStatus.CLAIMED
    assert store.review_items_by_id([first])[first].status == ReviewStatus.ACCEPTED
    found = {u.utterance_id: codings for u, codings, _, _ in store.iter_annotated(["review"])}
    first_utterance = store.review_items_by_id([first])[first].utterance_id
    assert found == {first_utterance: (Coding("tijd_evaluatie", "-"),)}
    assert browser.find_element(By.ID, "progress").text.startswith("1 van 3 gedaan vandaag")


def test_web_browser_code_a_selection_in_the_transcript(annotator_server, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base, store = annotator_server
    wait = WebDriverWait(browser, 20)
    _log_in(browser, base, wait)
    utterances = sorted((u for u in store.iter_utterances() if u.municipality == "Zuiderveen"),
                        key=lambda u: u.position)
    target = next(u for u in utterances if "budget" in u.text)
    browser.get(f"{base}/transcripts/{target.transcript_id}#u{target.utterance_id}")
    line = browser.find_element(By.ID, f"u{target.utterance_id}")
    assert "Tijd (voor evaluatie)" in line.find_element(By.CSS_SELECTOR, ".margin-codes").text

    start = target.text.index("budget")
    browser.execute_script(
        "var p = arguments[0].querySelector('p.utt-text'), node = p.firstChild, range = document.createRange();"
        "range.setStart(node, arguments[1]); range.setEnd(node, arguments[2]);"
        "var s = window.getSelection(); s.removeAllRanges(); s.addRange(range);"
        "p.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));", line, start, start + len("budget"))
    assert browser.find_element(By.ID, "selection-quote").text == "“budget”"
    Select(browser.find_element(By.ID, "code-select")).select_by_value("onderwijs_training")
    assert browser.find_element(By.ID, "info-onderwijs_training").is_displayed()  # the codebook beside the form
    browser.find_element(By.CSS_SELECTOR, '#code-form input[name="direction"][value="+"]').click()
    Select(browser.find_element(By.ID, "facet-select")).select_by_value("provision")
    browser.find_element(By.ID, "save-code").click()
    # the save reloads the page: a body found just before the reload goes stale, so read the source
    wait.until(lambda d: "Opgeslagen" in d.page_source)
    assert browser.current_url.endswith(f"#u{target.utterance_id}")
    found = {u.utterance_id: (codings, who) for u, codings, who, _ in store.iter_annotated(["review"])}
    assert found == {target.utterance_id: ((Coding("onderwijs_training", "+", "provision"),), "anna")}
    note = store.list_review_decisions()[0].note
    assert f"tekens {start}-{start + len('budget')}" in note
    margin = browser.find_element(By.ID, f"u{target.utterance_id}").find_element(By.CSS_SELECTOR, ".margin-codes")
    assert "Onderwijs en training" in margin.text and "anna" in margin.text

    # the fragments view links back to this utterance
    browser.get(f"{base}/fragments?code=onderwijs_training&municipality=Zuiderveen")
    quote = browser.find_element(By.CSS_SELECTOR, "tr.fragment a.quote")
    assert quote.get_attribute("href").endswith(f"/transcripts/{target.transcript_id}#u{target.utterance_id}")
    quote.click()
    wait.until(lambda d: "/transcripts/" in d.current_url)
