"""Status changes through the API call the same services as the pages."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from certificates.models import Certificate

pytestmark = pytest.mark.django_db


def api_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_an_officer_suspends_through_the_api(certificate, officer_erin):
    response = api_for(officer_erin).post(
        f"/api/certificates/{certificate.number}/suspend/", {"reason": "audit"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "suspended"
    assert response.json()["status_reason"] == "audit"
    assert Certificate.objects.get(pk=certificate.pk).status == "suspended"


@pytest.mark.parametrize(
    ("who", "data", "status", "message"),
    [
        ("vendor_bob", {"reason": "x"}, 403, "Only a scheme officer"),
        ("officer_erin", {"reason": ""}, 400, "needs a reason"),
        ("officer_erin", {}, 400, "required"),
    ],
)
def test_it_refuses_and_changes_nothing(certificate, request, who, data, status, message):
    user = request.getfixturevalue(who)
    response = api_for(user).post(
        f"/api/certificates/{certificate.number}/suspend/", data, format="json"
    )
    assert response.status_code == status and message in str(response.json()["detail"])
    assert Certificate.objects.get(pk=certificate.pk).status == "active"


def test_it_answers_409_and_404_and_asks_for_a_login(certificate, officer_erin):
    client = api_for(officer_erin)
    wrong = client.post(
        f"/api/certificates/{certificate.number}/reinstate/", {"reason": "x"}, format="json"
    )
    assert wrong.status_code == 409 and "not possible" in wrong.json()["detail"]
    missing = client.post("/api/certificates/CAS-2026-999999/revoke/", {"reason": "x"})
    assert missing.status_code == 404
    anonymous = api_for(None).post(f"/api/certificates/{certificate.number}/revoke/", {})
    assert anonymous.status_code == 401
    assert Certificate.objects.get(pk=certificate.pk).status == "active"


def test_the_schema_describes_the_status_actions(db, officer_erin):
    schema = api_for(officer_erin).get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    assert "/api/certificates/{number}/suspend/" in schema.json()["paths"]
