"""The report in a real headless Chromium (issue 21): the first screen states the checked share and the
model's real-text scores, clicking a cell opens its quotes, the page holds at least four charts.

Needs Debian's ``chromium`` and ``chromium-driver``; skips with that hint where they are missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report_evidence import _write

pytestmark = pytest.mark.browser



def test_report_in_a_browser_trust_first_cells_open_quotes_and_charts(tmp_path: Path, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    files, ratings, _ = _write(tmp_path / "rapport")
    browser.get(files.html.resolve().as_uri())
    trust = browser.find_element(By.ID, "vertrouwen")
    # the first screen: the trust box is visible without scrolling, above the grid
    assert trust.location["y"] < browser.execute_script("return window.innerHeight")
    assert "van het bewijs is door een mens gecodeerd of gecontroleerd" in trust.text
    assert "echte zinnen uit de scriptie" in trust.text and "%" in trust.text

    links = browser.find_elements(By.CSS_SELECTOR, "table.heatmap a.cell-link")
    assert len(links) == len(ratings)
    for where in ("Kerkeloo", "regio"):  # a municipality's cell and the region's
        panel = browser.find_element(
            By.CSS_SELECTOR, f'details.cell-fragments[data-municipality="{where}"][data-code="onderwijs_training"]')
        link = browser.find_element(By.CSS_SELECTOR, f'a.cell-link[href="#{panel.get_attribute("id")}"]')
        assert panel.get_attribute("open") is None
        browser.execute_script("window.scrollTo(0, 0)")
        link.click()
        WebDriverWait(browser, 10).until(lambda _, opened=panel: opened.get_attribute("open") is not None)
        quotes = panel.find_elements(By.CSS_SELECTOR, "li.fragment q")
        assert quotes and all(q.is_displayed() and q.text.startswith("Fragment nummer") for q in quotes)
        meta = panel.find_element(By.CSS_SELECTOR, "li.fragment .meta").text
        assert ("mens" in meta or "model, zekerheid" in meta) and "transcript t-" in meta

    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart svg")
    assert len(charts) >= 4
    assert all(chart.size["width"] > 100 and chart.size["height"] > 50 for chart in charts)
