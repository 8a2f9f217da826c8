"""A real headless Chromium on the review page: log in, accept one item, correct another by keyboard.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``); skips with that hint where they are missing.
"""

from __future__ import annotations

import shutil
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

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
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


@pytest.fixture()
def browser(tmp_path: Path):
    if not CHROMIUM.exists() or not Path(CHROMEDRIVER).exists():
        pytest.skip("needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


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
