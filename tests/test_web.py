"""The review page through FastAPI's TestClient: login, CSRF, escaping, roles, decisions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from pipeline import review
from pipeline.codebook import load_codebook
from pipeline.corpus.ingest import ingest_paths
from pipeline.records import Prediction, ReviewStatus
from pipeline.review.users import add_user
from pipeline.review.web import create_app
from pipeline.review.web.security import LoginLimiter

PASSWORD = "een-lang-wachtwoord"
HOSTILE = """Naam respondent: BX
Functie: manager
Werkend bij: gemeente Testerveen

Onderzoeker: Wat vindt u van <b>evaluaties</b>?

Respondent: Wij schrijven soms <script>alert('x')</script> in de notulen. De werkdruk is hoog & dat merk je.
"""


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def store(fresh_store, segmenter, tmp_path: Path):
    path = tmp_path / "BX.txt"
    path.write_text(HOSTILE, encoding="utf-8")
    assert not ingest_paths([path], fresh_store, segmenter).failed
    utterances = sorted(fresh_store.iter_utterances(), key=lambda u: u.position)
    predictions = [Prediction(u.utterance_id, "m1", "tijd_evaluatie", 0.41 + 0.01 * u.position, True, "-", 0.6)
                   for u in utterances]
    fresh_store.save_predictions(predictions)
    review.enqueue(fresh_store, predictions, {"tijd_evaluatie": 0.4}, model_id="m1")  # weak predicted codes
    add_user(fresh_store, "anna", "annotator", PASSWORD)
    add_user(fresh_store, "beheer", "admin", PASSWORD)
    return fresh_store


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def app(store, clock):
    return create_app(store, load_codebook(), secret_key="test-secret", secure_cookies=False,
                      limiter=LoginLimiter(max_failures=3, window_s=60, clock=clock))


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def login(client: TestClient, name: str = "anna", password: str = PASSWORD):
    token = csrf(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token, "next": "/queue"},
                       follow_redirects=False)


def test_web_every_route_needs_a_session(app) -> None:
    client = TestClient(app)
    checked = 0
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.path == "/login":
            continue
        path = route.path.replace("{item_id}", "0" * 40)
        for method in route.methods:
            response = client.request(method, path, follow_redirects=False)
            if method == "GET":
                assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
            else:
                assert response.status_code == 401, (method, path)
            checked += 1
    assert checked >= 12


def test_web_login_sets_a_strict_httponly_cookie(store) -> None:
    secure = TestClient(create_app(store, load_codebook(), secret_key="k", secure_cookies=True), base_url="https://testserver")
    response = login(secure)
    assert response.status_code == 303 and response.headers["location"] == "/queue"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    local = TestClient(create_app(store, load_codebook(), secret_key="k", secure_cookies=False))
    assert "secure" not in login(local).headers["set-cookie"].lower()
    page = secure.get("/queue")
    assert page.status_code == 200 and "0 gedaan vandaag, 2 open" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_web_post_without_csrf_token_is_refused(app, store) -> None:
    client = TestClient(app)
    no_token = client.post("/login", data={"name": "anna", "password": PASSWORD}, follow_redirects=False)
    assert no_token.status_code == 403
    assert login(client).status_code == 303
    item = store.list_review_items()[0]
    for data in ({"version": str(item.version)}, {"version": str(item.version), "csrf_token": "forged"}):
        refused = client.post(f"/item/{item.item_id}/accept", data=data, follow_redirects=False)
        assert refused.status_code == 403 and "security token" in refused.text
    assert store.list_review_decisions() == []
    assert client.post("/logout", follow_redirects=False).status_code == 403
    token = csrf(client.get("/queue").text)
    accepted = client.post(f"/item/{item.item_id}/accept", data={"version": str(item.version), "csrf_token": token},
                           follow_redirects=False)
    assert accepted.status_code == 303
    assert [d.user for d in store.list_review_decisions()] == ["anna"]


def test_web_utterance_text_is_escaped(app, store) -> None:
    client = TestClient(app)
    login(client)
    hostile = next(i for i in store.list_review_items()
                   if "<script>" in store.utterances_by_id([i.utterance_id])[i.utterance_id].text)
    for page in (client.get("/queue").text, client.get(f"/item/{hostile.item_id}").text):
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    item_page = client.get(f"/item/{hostile.item_id}").text
    assert "&lt;b&gt;evaluaties&lt;/b&gt;" in item_page  # the interviewer's question, escaped too
    assert "Testerveen" in item_page and "BX" in item_page


def test_web_login_is_rate_limited(app, clock) -> None:
    client = TestClient(app)
    for _ in range(3):
        assert login(client, password="fout-wachtwoord").status_code == 401
    blocked = login(client)
    assert blocked.status_code == 429 and "Too many failed logins" in blocked.text
    clock.t += 61
    assert login(client).status_code == 303


def test_web_wrong_password_and_unknown_user_look_the_same(app) -> None:
    client = TestClient(app)
    wrong, unknown = login(client, password="fout-wachtwoord"), login(client, name="niemand")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name or password" in wrong.text and "Wrong user name or password" in unknown.text


def test_web_admin_pages_are_for_admins_only(app, store) -> None:
    annotator = TestClient(app)
    login(annotator)
    assert annotator.get("/admin/users").status_code == 403
    assert annotator.get("/admin/audit").status_code == 403
    assert "/admin/audit" not in annotator.get("/queue").text
    admin = TestClient(app)
    login(admin, "beheer")
    users = admin.get("/admin/users")
    assert users.status_code == 200 and "anna" in users.text and "annotator" in users.text
    item = store.list_review_items()[0]
    review.skip(store, item.item_id, "anna", version=item.version)
    audit = admin.get("/admin/audit")
    assert audit.status_code == 200 and "skip" in audit.text and item.item_id[:12] in audit.text


def test_web_redirect_after_login_stays_on_the_site(app) -> None:
    client = TestClient(app)
    token = csrf(client.get("/login").text)
    response = client.post("/login", data={"name": "anna", "password": PASSWORD, "csrf_token": token,
                                           "next": "//evil.example/x"}, follow_redirects=False)
    assert response.headers["location"] == "/queue"


def test_web_review_flow_and_conflict(app, store) -> None:
    anna, bram_client = TestClient(app), TestClient(app)
    add_user(store, "bram", "annotator", PASSWORD)
    login(anna)
    login(bram_client, "bram")
    started = anna.post("/claim", data={"csrf_token": csrf(anna.get("/queue").text)}, follow_redirects=False)
    first_id = started.headers["location"].removeprefix("/item/")
    page = anna.get(f"/item/{first_id}").text
    assert 'id="utterance"' in page and "tijd_evaluatie" in page and "0 gedaan vandaag, 2 open" in page
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    corrected = anna.post(f"/item/{first_id}/correct", data={
        "csrf_token": csrf(page), "version": version, "code": ["analyse", "tijd_evaluatie"],
        "direction-analyse": "+", "direction-tijd_evaluatie": "0", "facet-analyse": "practice"}, follow_redirects=False)
    assert corrected.status_code == 303 and corrected.headers["location"].startswith("/item/")
    codings = {c.code: (c.direction, c.facet) for _, cs, who, _ in store.iter_annotated(["review"]) for c in cs}
    assert codings == {"analyse": ("+", "practice"), "tijd_evaluatie": ("0", None)}
    # bram opened the same item before anna decided: his accept is refused with a clear message
    stale = bram_client.post(f"/item/{first_id}/accept", data={"csrf_token": csrf(bram_client.get("/queue").text),
                                                               "version": version}, follow_redirects=True)
    assert "already corrected by anna" in stale.text
    assert [d.user for d in store.list_review_decisions()] == ["anna"]
    # undo brings the item back to anna
    undone = anna.post("/undo", data={"csrf_token": csrf(anna.get("/queue").text)}, follow_redirects=False)
    assert undone.headers["location"] == f"/item/{first_id}"
    assert store.review_items_by_id([first_id])[first_id].status == ReviewStatus.CLAIMED
    assert list(store.iter_annotated(["review"])) == []
