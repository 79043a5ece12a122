"""Sign-in throttling: guesses slow down and stop, but never keep the account's owner out."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from tests.support import Api

PASSWORD = "correct horse battery"


def browser(app_client: TestClient, ip: str) -> TestClient:
    return TestClient(app_client.app, client=(ip, 50000))


def attempt(client: TestClient, password: str, email: str = "admin@example.com") -> tuple[int, str | None]:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return response.status_code, response.headers.get("retry-after")


def test_fifty_wrong_guesses_do_not_keep_the_owner_out(api: Api, app_client: TestClient) -> None:
    # given: the admin signed in from the office before; an attacker elsewhere
    office = browser(app_client, "198.51.100.10")
    assert attempt(office, PASSWORD)[0] == 200
    office.cookies.clear()
    attacker = browser(app_client, "203.0.113.66")
    # when
    answers = [attempt(attacker, f"guess {n}") for n in range(50)]
    owner = attempt(office, PASSWORD)
    # then: the attacker was slowed and stopped, with a Retry-After; the owner gets in
    statuses = [status for status, _ in answers]
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    assert all(int(retry) >= 1 for status, retry in answers if status == 429 and retry is not None)
    assert all(retry is not None for status, retry in answers if status == 429)
    assert owner[0] == 200
    assert attempt(attacker, PASSWORD)[0] == 429


def test_a_remembered_browser_gets_in_from_a_new_address(api: Api, app_client: TestClient) -> None:
    # given: the admin signed in with this browser once (it keeps the device cookie)
    laptop = browser(app_client, "198.51.100.10")
    assert attempt(laptop, PASSWORD)[0] == 200
    attacker = browser(app_client, "203.0.113.66")
    for n in range(10):
        attempt(attacker, f"guess {n}")
    # when: the laptop travels to a new address
    travelling = browser(app_client, "192.0.2.77")
    travelling.cookies.set("hilo_device", laptop.cookies["hilo_device"])
    forged = browser(app_client, "192.0.2.78")
    forged.cookies.set("hilo_device", "1.forged")
    # then
    assert attempt(forged, PASSWORD)[0] == 429
    assert attempt(travelling, PASSWORD)[0] == 200


def test_a_new_address_waits_out_a_growing_delay(api: Api, app_client: TestClient, clock: FrozenClock) -> None:
    # given: five wrong guesses (the tests' limit) from one address
    attacker = browser(app_client, "203.0.113.66")
    for n in range(5):
        assert attempt(attacker, f"guess {n}")[0] == 401
    newcomer = browser(app_client, "192.0.2.1")
    # when
    blocked, retry = attempt(newcomer, PASSWORD)
    clock.advance(seconds=int(retry or 0))
    after_wait = attempt(newcomer, PASSWORD)
    # then
    assert blocked == 429 and retry == "1"
    assert after_wait[0] == 200


def test_one_address_spraying_many_accounts_is_stopped(api: Api, app_client: TestClient) -> None:
    # given: the tests' limit is 5, so 15 attempts a minute per address
    sprayer = browser(app_client, "203.0.113.99")
    # when
    answers = [attempt(sprayer, "Summer2026!", email=f"user{n}@example.com") for n in range(16)]
    # then
    assert [status for status, _ in answers[:15]] == [401] * 15
    assert answers[15][0] == 429 and answers[15][1] is not None
