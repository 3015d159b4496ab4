"""Verification is rate-limited per client address, so numbers cannot be enumerated."""

from __future__ import annotations

import pytest
from django.test import Client

from certificates.ratelimit import Rate, parse_rate

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_a_minute(settings):
    settings.VERIFY_RATE = "3/minute"


def client_at(address: str, **headers: str) -> Client:
    return Client(REMOTE_ADDR=address, **headers)


def test_it_refuses_the_fourth_unknown_number_in_a_minute(three_a_minute):
    buyer = client_at("203.0.113.7")
    for n in range(1, 4):
        assert buyer.get(f"/verify/CAS-2026-90000{n}").status_code == 200
    refused = buyer.get("/verify/CAS-2026-900004")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Too many verification requests" in refused.content.decode()


def test_it_counts_the_page_and_the_api_together(three_a_minute):
    buyer = client_at("203.0.113.8")
    assert buyer.get("/verify/CAS-2026-900001").status_code == 200
    assert buyer.get("/api/verify/CAS-2026-900002/").status_code == 404
    assert buyer.post("/api/verify/", {"number": "CAS-2026-900003"}).status_code == 200
    refused = buyer.get("/api/verify/CAS-2026-900004/")
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many verification requests")
    assert refused["Retry-After"]


def test_it_counts_each_address_on_its_own(three_a_minute):
    for _ in range(3):
        client_at("203.0.113.9").get("/verify/CAS-2026-900001")
    assert client_at("203.0.113.9").get("/verify/").status_code == 429
    assert client_at("198.51.100.1").get("/verify/").status_code == 200


def test_it_ignores_a_forged_forwarded_address_by_default(three_a_minute):
    for n in range(3):
        client_at("203.0.113.10", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").get("/verify/")
    forged = client_at("203.0.113.10", HTTP_X_FORWARDED_FOR="10.0.0.99")
    assert forged.get("/verify/").status_code == 429


def test_it_trusts_the_address_its_own_proxy_forwards(three_a_minute, settings):
    settings.RATE_LIMIT_TRUSTED_PROXIES = 1
    proxy = "10.1.1.1"
    for _ in range(3):
        client_at(proxy, HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.11").get("/verify/")
    # The client put 1.2.3.4 there itself; our proxy appended the address it saw.
    assert (
        client_at(proxy, HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.11").get("/verify/").status_code
        == 429
    )
    assert client_at(proxy, HTTP_X_FORWARDED_FOR="203.0.113.12").get("/verify/").status_code == 200


def test_it_lifts_the_limit_when_the_rate_is_off(settings):
    settings.VERIFY_RATE = "off"
    buyer = client_at("203.0.113.13")
    assert all(buyer.get("/verify/").status_code == 200 for _ in range(20))


def test_it_reads_rates_in_plain_words():
    assert parse_rate("60/minute") == Rate(60, 60)
    assert parse_rate("1000/hour") == Rate(1000, 3600)
    assert parse_rate("10/5minutes") == Rate(10, 300)
    assert parse_rate("off") is None
    with pytest.raises(ValueError, match="write it as 60/minute"):
        parse_rate("sixty a minute")


def test_it_refuses_to_start_with_a_rate_it_cannot_read(settings):
    from django.core.exceptions import ImproperlyConfigured

    from certificates.ratelimit import rate_limited

    settings.VERIFY_RATE = "lots"
    with pytest.raises(ImproperlyConfigured, match="write it as 60/minute"):
        rate_limited("verify")(lambda request: None)
