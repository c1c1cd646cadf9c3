"""Sign-in throttling: concurrent attempts against the real database, per user name and
address and (a higher limit) per address, on the sign-in page and over HTTP Basic, and the
window running out."""

from __future__ import annotations

import base64
import threading
import time

import pytest
from django.contrib.auth import authenticate
from django.db import connection
from django.test import Client, RequestFactory

from taskcenter.accounts import roles, throttle
from taskcenter.accounts.throttle import SignInThrottled
from tests.accounts.conftest import PASSWORD
from tests.factories import make_user

LIMIT = 5
ADDRESS_LIMIT = 10


@pytest.fixture(autouse=True)
def limits(settings):
    settings.TASKCENTER_SIGNIN_FAILURE_LIMIT = LIMIT
    settings.TASKCENTER_SIGNIN_ADDRESS_FAILURE_LIMIT = ADDRESS_LIMIT
    settings.TASKCENTER_SIGNIN_WINDOW_SECONDS = 60.0


@pytest.fixture
def clock(monkeypatch):
    """A settable clock, starting at the beginning of a window."""
    now = {"t": 6000.0}
    monkeypatch.setattr(throttle, "clock", lambda: now["t"])
    return now


def attempt(username: str, password: str, address: str = "10.0.0.1") -> str:
    request = RequestFactory().post("/login/", REMOTE_ADDR=address)
    try:
        user = authenticate(request, username=username, password=password)
    except SignInThrottled:
        return "throttled"
    return "ok" if user is not None else "wrong"


def run_concurrently(count: int, target) -> list[str]:
    barrier = threading.Barrier(count)
    results: list[str] = [""] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_wrong_passwords_get_five_evaluations(clock):
    make_user("alice", roles.VIEWER)
    evaluated = []
    real = throttle.ModelBackend.authenticate

    def counting(self, *args, **kwargs):
        evaluated.append(1)
        return real(self, *args, **kwargs)

    throttle.ModelBackend.authenticate = counting
    try:
        results = run_concurrently(20, lambda i: attempt("alice", "wrong", "10.1.0.1"))
    finally:
        throttle.ModelBackend.authenticate = real
    assert results.count("wrong") == LIMIT == len(evaluated)  # exactly: compare-and-set
    assert results.count("throttled") == 20 - LIMIT
    # Even the right password is refused now from there, without being checked.
    assert attempt("alice", PASSWORD, "10.1.0.1") == "throttled"


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_right_passwords_all_get_in(clock):
    """An API client using Basic in parallel is not throttled: attempts beyond the limit
    wait for the checks in flight instead of being refused."""
    make_user("alice", roles.VIEWER)
    results = run_concurrently(20, lambda i: attempt("alice", PASSWORD, "10.5.0.1"))
    assert results == ["ok"] * 20
    from taskcenter.accounts.models import SignInFailureCount

    assert set(SignInFailureCount.objects.values_list("count", "pending")) == {(0, 0)}


@pytest.mark.django_db(transaction=True)
def test_slow_password_checks_keep_the_waiting_attempts_in(clock, monkeypatch):
    """On a busy machine the rounds of slow hashes together outlast the admission wait;
    the attempts still get in because the wait restarts each time a check finishes."""
    make_user("alice", roles.VIEWER)
    monkeypatch.setattr(throttle, "ADMISSION_WAIT_SECONDS", 0.8)
    real = throttle.ModelBackend.authenticate

    def slow(self, *args, **kwargs):
        # Four rounds of five: 1.6 s in all, twice the 0.8 s wait (which leaves a check
        # on a loaded machine room to finish within it).
        time.sleep(0.4)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(throttle.ModelBackend, "authenticate", slow)
    results = run_concurrently(20, lambda i: attempt("alice", PASSWORD, "10.6.0.1"))
    assert results == ["ok"] * 20


@pytest.mark.django_db(transaction=True)
def test_simultaneous_attempts_on_many_users_from_one_address(clock):
    for i in range(14):
        make_user(f"user{i}", roles.VIEWER)
    results = run_concurrently(14, lambda i: attempt(f"user{i}", "wrong", "192.0.2.7"))
    assert results.count("wrong") == ADDRESS_LIMIT
    assert results.count("throttled") == 14 - ADDRESS_LIMIT
    assert attempt("user0", PASSWORD, "192.0.2.8") == "ok"  # same user, another address


def test_per_address_across_users(db, clock):
    make_user("bob", roles.VIEWER)
    for i in range(ADDRESS_LIMIT):
        assert attempt(f"nobody{i}", "guess", "203.0.113.5") == "wrong"
    assert attempt("bob", PASSWORD, "203.0.113.5") == "throttled"
    assert attempt("bob", PASSWORD, "203.0.113.6") == "ok"


def test_a_success_does_not_reset_the_address_counter_for_others(db, clock):
    make_user("alice", roles.VIEWER)
    make_user("bob", roles.VIEWER)
    for i in range(ADDRESS_LIMIT - 1):
        assert attempt(f"alice{i}", "wrong", "198.51.100.1") == "wrong"
    assert attempt("bob", PASSWORD, "198.51.100.1") == "ok"
    assert attempt("mallory", "wrong", "198.51.100.1") == "wrong"  # the 10th failure
    assert attempt("mallory2", "wrong", "198.51.100.1") == "throttled"


def test_a_success_resets_the_user_counter(db, clock):
    make_user("alice", roles.VIEWER)
    for _ in range(LIMIT - 1):
        assert attempt("alice", "wrong", "10.2.0.1") == "wrong"
    assert attempt("alice", PASSWORD, "10.2.0.1") == "ok"
    for _ in range(LIMIT):
        assert attempt("alice", "wrong", "10.2.0.1") == "wrong"
    assert attempt("alice", "wrong", "10.2.0.1") == "throttled"


def test_typos_at_one_address_do_not_lock_out_colleagues(db, clock):
    make_user("alice", roles.VIEWER)
    make_user("bob", roles.VIEWER)
    for _ in range(LIMIT):
        assert attempt("alice", "typo", "10.9.0.1") == "wrong"
    assert attempt("alice", PASSWORD, "10.9.0.1") == "throttled"  # alice herself waits
    assert attempt("bob", PASSWORD, "10.9.0.1") == "ok"  # her colleague behind the same NAT


def test_a_named_user_cannot_be_locked_out_from_everywhere(db, clock):
    make_user("alice", roles.VIEWER)
    for i in range(3 * LIMIT):
        assert attempt("alice", "guess", f"203.0.113.{i}") == "wrong"
    for _ in range(LIMIT):
        assert attempt("alice", "guess", "203.0.113.200") == "wrong"
    assert attempt("alice", "guess", "203.0.113.200") == "throttled"  # the guesser is stopped
    assert attempt("alice", PASSWORD, "10.9.9.9") == "ok"  # alice, at her own desk


def test_brute_force_on_one_user_stays_throttled(db, clock):
    make_user("alice", roles.VIEWER)
    results = [attempt("alice", f"guess{i}", "203.0.113.77") for i in range(50)]
    assert results.count("wrong") == LIMIT and results.count("throttled") == 50 - LIMIT
    assert attempt("alice", PASSWORD, "203.0.113.77") == "throttled"


def test_the_lockout_expires_with_the_window(db, clock):
    make_user("alice", roles.VIEWER)
    for _ in range(LIMIT):
        attempt("alice", "wrong")
    clock["t"] += 45
    with pytest.raises(SignInThrottled) as refused:
        authenticate(
            RequestFactory().post("/", REMOTE_ADDR="10.0.0.1"), username="alice", password=PASSWORD
        )
    assert refused.value.wait == 15
    clock["t"] += 15
    assert attempt("alice", PASSWORD) == "ok"


def test_user_names_are_counted_case_insensitively(db, clock):
    make_user("alice", roles.VIEWER)
    for name in ["alice", "ALICE", "Alice ", "aLiCe", "alice"]:
        assert attempt(name, "wrong", "10.4.0.1") == "wrong"
    assert attempt("alice", PASSWORD, "10.4.0.1") == "throttled"


def test_the_sign_in_page_says_when_to_try_again(db, clock):
    make_user("alice", roles.VIEWER)
    client = Client()
    for _ in range(LIMIT):
        response = client.post("/login/", {"username": "alice", "password": "nope"})
        assert response.status_code == 200 and b"Too many" not in response.content
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed sign-ins, try again in 60 seconds." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_api_answers_429_in_its_envelope(db, clock):
    make_user("alice", roles.VIEWER)

    def basic(password: str):
        token = base64.b64encode(f"alice:{password}".encode()).decode()
        return Client().get("/api/v2/tasks/instances", HTTP_AUTHORIZATION=f"Basic {token}")

    for _ in range(LIMIT):
        assert basic("nope").status_code == 401
    response = basic(PASSWORD)
    assert response.status_code == 429
    body = response.json()
    assert body["successful"] is False and body["error"]["code"] == 30004
    assert body["error"]["message"] == "Too many failed sign-ins, try again in 60 seconds."
    assert response["Retry-After"] == "60"
    clock["t"] += 60
    assert basic(PASSWORD).status_code == 200


def test_old_windows_are_cleaned_up(db, clock):
    from taskcenter.accounts.models import SignInFailureCount

    attempt("alice", "wrong")
    clock["t"] += 600
    attempt("alice", "wrong")
    assert set(SignInFailureCount.objects.values_list("bucket", flat=True)) == {110}


# --- A shared address: others' failures do not lock out a user known there ------------------


def basic_status(username: str, password: str, address: str) -> int:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    response = Client().get(
        "/api/v2/tasks/instances", HTTP_AUTHORIZATION=f"Basic {token}", REMOTE_ADDR=address
    )
    return response.status_code


def test_failures_at_a_shared_address_do_not_lock_out_its_known_users(db, clock):
    from taskcenter.api.authentication import verified_credentials

    make_user("bob", roles.VIEWER)
    make_user("carol", roles.VIEWER)
    office = "198.51.100.77"
    assert attempt("bob", PASSWORD, office) == "ok"  # bob has signed in from the office
    assert basic_status("carol", PASSWORD, office) == 200  # carol too, over Basic
    verified_credentials.clear()
    for i in range(ADDRESS_LIMIT):  # someone else in the office guesses names
        assert attempt(f"nobody{i}", "guess", office) == "wrong"
    assert attempt("guess-more", "guess", office) == "throttled"
    assert attempt("bob", PASSWORD, office) == "ok"
    assert basic_status("carol", PASSWORD, office) == 200
    # A known name is still guarded by its own limit.
    for _ in range(LIMIT):
        assert attempt("bob", "wrong", office) == "wrong"
    assert attempt("bob", PASSWORD, office) == "throttled"


def test_a_name_known_long_ago_is_held_by_the_address_limit_again(db, clock, settings):
    from datetime import timedelta

    from taskcenter.accounts.models import KnownSignIn

    settings.TASKCENTER_SIGNIN_KNOWN_DAYS = 30
    make_user("bob", roles.VIEWER)
    assert attempt("bob", PASSWORD, "198.51.100.78") == "ok"
    KnownSignIn.objects.update(
        last_success_at=KnownSignIn.objects.get().last_success_at - timedelta(days=31)
    )
    for i in range(ADDRESS_LIMIT):
        assert attempt(f"nobody{i}", "guess", "198.51.100.78") == "wrong"
    assert attempt("bob", PASSWORD, "198.51.100.78") == "throttled"
