"""Review-page sessions and login throttling (issue 20): server-side sessions that logout,
a password change and timeouts end; a lockout per (user name, address) kept in the store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.codebook import load_codebook
from pipeline.review import set_password
from pipeline.review.users import add_user
from pipeline.review.web import create_app
from pipeline.review.web.security import LoginLimiter, SessionPolicy, client_address, lock_seconds
from pipeline.store import open_store

PASSWORD = "een-lang-wachtwoord"


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def store(fresh_store):
    add_user(fresh_store, "anna", "annotator", PASSWORD)
    add_user(fresh_store, "bert", "annotator", PASSWORD)
    return fresh_store


def make_app(store, clock: Clock, **options):
    return create_app(store, load_codebook(), secret_key="test-secret", secure_cookies=False,
                      limiter=LoginLimiter(max_failures=5, window_s=60, clock=clock),
                      sessions=SessionPolicy(idle_s=600, max_s=3600, clock=clock), **options)


def login(client: TestClient, name: str = "anna", password: str = PASSWORD, headers: dict | None = None):
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token, "next": "/queue"},
                       headers=headers or {}, follow_redirects=False)


def logout(client: TestClient) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/queue").text).group(1)
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303


def opens_queue(client: TestClient) -> bool:
    return client.get("/queue", follow_redirects=False).status_code == 200


def test_web_sessions_copied_cookie_is_refused_after_logout(store, clock) -> None:
    app = make_app(store, clock)
    browser = TestClient(app)
    assert login(browser).status_code == 303
    copy = TestClient(app, cookies=dict(browser.cookies))  # the attacker's copy of the cookie
    assert opens_queue(copy)
    logout(browser)
    assert not opens_queue(browser)
    assert not opens_queue(copy)
    assert copy.post("/claim", data={"csrf_token": "x"}, follow_redirects=False).status_code == 401


def test_web_sessions_password_change_ends_every_session(store, clock) -> None:
    app = make_app(store, clock)
    laptop, phone, other = TestClient(app), TestClient(app), TestClient(app)
    login(laptop), login(phone), login(other, "bert")
    assert set_password(store, "anna", "nieuw-wachtwoord") == 2
    assert not opens_queue(laptop) and not opens_queue(phone)
    assert opens_queue(other)
    assert login(laptop, password=PASSWORD).status_code == 401
    assert login(laptop, password="nieuw-wachtwoord").status_code == 303 and opens_queue(laptop)


def test_web_sessions_idle_and_absolute_timeouts(store, clock) -> None:
    client = TestClient(make_app(store, clock))
    login(client)
    clock.t += 601  # unused longer than the idle timeout
    assert not opens_queue(client)
    login(client)
    for _ in range(6):  # in use every 9 minutes: the idle timeout never strikes ...
        clock.t += 540
        assert opens_queue(client)
    clock.t += 540  # ... but an hour after login the session ends however busy it is
    assert not opens_queue(client)


def test_web_sessions_lockout_is_per_name_and_address(store, clock) -> None:
    client = TestClient(make_app(store, clock))
    attacker = {"x-forwarded-for": "203.0.113.66"}  # ignored: no trusted proxy configured
    for _ in range(5):
        assert login(client, password="fout-wachtwoord").status_code == 401
    assert login(client).status_code == 429  # this address, this name: locked
    assert login(client, "bert").status_code == 303  # another name from this address: not locked
    # the same name from another address logs in: TestClient's peer is "testclient"
    other = TestClient(make_app(store, clock), client=("198.51.100.7", 50000))
    assert login(other).status_code == 303
    assert login(client, headers=attacker).status_code == 429  # a forged header does not escape the lock
    clock.t += 61
    assert login(client).status_code == 303


def test_web_sessions_lockout_backs_off_and_survives_a_restart(store, clock, tmp_path: Path) -> None:
    client = TestClient(make_app(store, clock))
    for _ in range(5):
        assert login(client, password="fout-wachtwoord").status_code == 401
        clock.t += 61  # wait out each lock
    assert login(client, password="fout-wachtwoord").status_code == 401  # the sixth failure: 120 s
    reopened = open_store(store.url)  # a restart: a new process, a new app, the same database
    restarted = TestClient(make_app(reopened, clock))
    blocked = login(restarted)
    assert blocked.status_code == 429 and "Try again in 3 minute(s)" in blocked.text
    clock.t += 61
    assert login(restarted).status_code == 429  # a first lock would have ended; this one doubled
    clock.t += 60
    assert login(restarted).status_code == 303
    reopened.close()


def test_web_sessions_forwarded_for_counts_only_from_a_trusted_proxy(store, clock) -> None:
    proxy = ("10.0.0.2", 443)
    app = make_app(store, clock, trusted_proxies=["10.0.0.2"])
    one = TestClient(app, client=proxy)
    for _ in range(5):
        login(one, password="fout-wachtwoord", headers={"x-forwarded-for": "203.0.113.66"})
    assert login(one, headers={"x-forwarded-for": "203.0.113.66"}).status_code == 429
    # behind the same proxy, the right user from another client is not locked out
    assert login(TestClient(app, client=proxy), headers={"x-forwarded-for": "198.51.100.7"}).status_code == 303


@pytest.mark.parametrize(("peer", "header", "trusted", "expected"), [
    ("10.0.0.2", "203.0.113.9", ["10.0.0.2"], "203.0.113.9"),
    ("10.0.0.2", "198.51.100.1, 203.0.113.9, 10.0.0.3", ["10.0.0.2", "10.0.0.3"], "203.0.113.9"),
    ("10.0.0.2", "nonsense", ["10.0.0.2"], "10.0.0.2"),
    ("198.51.100.7", "203.0.113.9", [], "198.51.100.7"),
    (None, None, [], "?"),
])
def test_web_sessions_client_address(peer, header, trusted, expected) -> None:
    assert client_address(peer, header, trusted) == expected


def test_web_sessions_lock_seconds_backoff() -> None:
    assert [lock_seconds(n, 5, 60, 900) for n in range(4, 11)] == [0, 60, 120, 240, 480, 900, 900]


def test_web_sessions_store_keeps_only_a_hash_of_the_token(store, clock) -> None:
    client = TestClient(make_app(store, clock))
    login(client)
    import sqlalchemy as sa

    with store.engine.connect() as connection:
        ids = connection.execute(sa.text("SELECT id FROM review_sessions")).scalars().all()
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{64}", ids[0])
    assert ids[0] not in str(client.cookies.get("codeer_review"))
