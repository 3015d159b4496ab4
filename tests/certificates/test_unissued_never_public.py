"""A certificate still being issued (no signed PDF yet) is on no public surface: not in the
registry, its downloads, charts, API, FHIR view, matrix, vendor page or verification."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from certificates.models import Certificate
from certificates.services import certificate_content

pytestmark = pytest.mark.django_db

NUMBER = "CAS-2026-000777"


@pytest.fixture
def being_issued(granted):
    # The grant committed nothing yet (tests run in a transaction): the row is what a
    # crashed issuance leaves behind, numbered but unsigned.
    return Certificate.objects.create(
        number=NUMBER,
        application=granted,
        content=certificate_content(application=granted),
        decision_date=granted.decided_at.date(),
        valid_from=granted.decided_at.date(),
        valid_until=granted.decided_at.date().replace(year=granted.decided_at.year + 3),
    )


@pytest.mark.parametrize(
    "url",
    [
        "/registry/?q=Helix",
        "/registry/?status=active",
        "/registry/download/active.csv",
        "/registry/download/inactive.csv",
        "/registry/download/active.json",
        "/registry/download/inactive.json",
        "/api/registry/certificates/",
        "/registry/charts/",
    ],
)
def test_it_lists_no_certificate_being_issued(being_issued, buyer, url):
    cache.clear()
    answer = buyer.get(url)
    assert answer.status_code == 200
    body = b"".join(answer.streaming_content) if answer.streaming else answer.content
    assert NUMBER.encode() not in body
    assert b"HelixEHR" not in body


@pytest.mark.parametrize(
    "url",
    [
        f"/certificates/{NUMBER}/",
        f"/certificates/{NUMBER}/pdf/",
        f"/api/registry/certificates/{NUMBER}/",
        f"/api/certificates/{NUMBER}/fhir/",
        f"/api/verify/{NUMBER}/",
    ],
)
def test_it_answers_a_certificate_being_issued_as_unknown(being_issued, buyer, url):
    answer = buyer.get(url)
    assert answer.status_code == 404
    assert b"HelixEHR" not in answer.content


def test_it_verifies_a_certificate_being_issued_as_never_issued(being_issued, buyer):
    page = buyer.get(f"/verify/{NUMBER}").content.decode()
    assert f"No certificate {NUMBER} was issued by this scheme." in page


def test_its_vendor_has_no_public_page_until_a_certificate_is_issued(being_issued, buyer):
    assert buyer.get(f"/registry/vendors/{being_issued.application.vendor_id}/").status_code == 404
