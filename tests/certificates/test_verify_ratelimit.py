"""Every look-up by certificate number is rate-limited per client address, in one shared
count, so numbers cannot be enumerated faster than the limit by any route."""

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
    assert "Too many certificate look-ups" in refused.content.decode()


def test_it_counts_the_page_and_the_api_together(three_a_minute):
    buyer = client_at("203.0.113.8")
    assert buyer.get("/verify/CAS-2026-900001").status_code == 200
    assert buyer.get("/api/verify/CAS-2026-900002/").status_code == 404
    assert buyer.post("/api/verify/", {"number": "CAS-2026-900003"}).status_code == 404
    refused = buyer.get("/api/verify/CAS-2026-900004/")
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many certificate look-ups")
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


def test_it_counts_every_lookup_by_number_in_one_limit(certificate, settings):
    settings.VERIFY_RATE = "6/minute"
    number = certificate.number
    buyer = client_at("203.0.113.20")
    answers = [
        buyer.get(f"/certificates/{number}/"),
        buyer.get(f"/certificates/{number}/pdf/"),
        buyer.get(f"/api/certificates/{number}/fhir/"),
        buyer.get(f"/api/registry/certificates/{number}/"),
        buyer.get(f"/verify/{number}"),
        buyer.get(f"/api/verify/{number}/"),
    ]
    assert [a.status_code for a in answers] == [200] * 6
    for path in (
        f"/certificates/{number}/",
        f"/certificates/{number}/pdf/",
        f"/api/certificates/{number}/fhir/",
        f"/api/registry/certificates/{number}/",
        f"/verify/{number}",
        f"/api/verify/{number}/",
    ):
        refused = buyer.get(path)
        assert refused.status_code == 429, path
        assert refused["Retry-After"]
        assert "Too many certificate look-ups" in refused.content.decode()


def test_it_counts_unknown_numbers_on_the_certificate_pages_too(db, settings):
    settings.VERIFY_RATE = "2/minute"
    buyer = client_at("203.0.113.21")
    assert buyer.get("/certificates/CAS-2026-900001/").status_code == 404
    assert buyer.get("/api/registry/certificates/CAS-2026-900002/").status_code == 404
    assert buyer.get("/certificates/CAS-2026-900003/pdf/").status_code == 429


def test_it_counts_following_by_number_too_so_unknown_numbers_cannot_be_probed_there(db, settings):
    settings.VERIFY_RATE = "2/minute"
    buyer = client_at("203.0.113.22")
    for number in ("CAS-2026-900001", "CAS-2026-900002"):
        answer = buyer.post(f"/certificates/{number}/follow/", {"email": "b@example.org"})
        assert answer.status_code == 404
    answer = buyer.post("/certificates/CAS-2026-900003/follow/", {"email": "b@example.org"})
    assert answer.status_code == 429
    assert answer.has_header("Retry-After")


def test_it_answers_a_fhir_client_with_a_throttled_operation_outcome(certificate, settings):
    settings.VERIFY_RATE = "1/minute"
    buyer = client_at("203.0.113.22")
    buyer.get(f"/api/certificates/{certificate.number}/fhir/")
    refused = buyer.get(f"/api/certificates/{certificate.number}/fhir/")
    assert refused.status_code == 429
    issue = refused.json()["issue"][0]
    assert issue["code"] == "throttled" and "Too many certificate look-ups" in issue["diagnostics"]


def test_it_never_limits_a_logged_in_officer_managing_certificates(
    certificate, officer_erin, settings
):
    from support import client_for

    settings.VERIFY_RATE = "2/minute"
    officer = client_for(officer_erin)
    for _ in range(5):
        assert officer.get(f"/certificates/{certificate.number}/").status_code == 200
        assert officer.get(f"/verify/{certificate.number}").status_code == 200


def test_it_limits_a_logged_in_vendor_like_anyone_else(certificate, vendor_alice, settings):
    from support import client_for

    settings.VERIFY_RATE = "2/minute"
    vendor = client_for(vendor_alice)
    assert vendor.get(f"/certificates/{certificate.number}/").status_code == 200
    assert vendor.get(f"/certificates/{certificate.number}/").status_code == 200
    assert vendor.get(f"/certificates/{certificate.number}/").status_code == 429


def test_it_documents_the_limit_on_every_lookup_by_number(db, officer_erin):
    from support import client_for

    paths = client_for(officer_erin).get("/api/schema/", {"format": "json"}).json()["paths"]
    for path, method in (
        ("/api/verify/", "post"),
        ("/api/verify/{number}/", "get"),
        ("/api/certificates/{number}/fhir/", "get"),
        ("/api/registry/certificates/{number}/", "get"),
    ):
        assert "429" in paths[path][method]["responses"], path


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
