"""Two API clients acting on one case at the same moment (PostgreSQL, real connections): one
outcome, one set of side effects, and the loser gets 409 with a message saying what happened."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from support import race

from cas.models import Application, AuditEntry
from certificates.models import Certificate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def api_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def post(user, application: Application, action: str, **data):
    client = api_for(user)  # the token exists before the race starts
    url = f"/api/applications/{application.pk}/{action}/"
    return lambda: client.post(url, data, format="json")


def decisions(application: Application) -> tuple[str, ...]:
    return tuple(
        AuditEntry.objects.filter(
            object_type="cas.application",
            object_id=str(application.pk),
            action__in=["grant", "withdraw"],
        ).values_list("action", flat=True)
    )


def test_it_grants_once_when_two_officers_grant_through_the_api(
    pending_case, officer_erin, officer_frank
):
    responses = race(
        post(officer_erin, pending_case, "grant", reason="first"),
        post(officer_frank, pending_case, "grant", reason="second"),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409], responses
    loser = next(r for r in responses if r.status_code == 409)
    assert "is now certified: 'grant' is no longer possible" in loser.json()["detail"]
    winner = next(r for r in responses if r.status_code == 200)
    assert winner.json()["state"] == "certified"
    assert decisions(pending_case) == ("grant",)
    assert Certificate.objects.filter(application=pending_case).count() == 1


def test_it_lets_grant_or_withdraw_win_through_the_api_but_not_both(
    pending_case, officer_frank, vendor_alice
):
    responses = race(
        post(officer_frank, pending_case, "grant"),
        post(vendor_alice, pending_case, "withdraw", reason="replaced"),
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409], responses
    final = Application.objects.get(pk=pending_case.pk).state
    loser = next(r for r in responses if r.status_code == 409)
    assert f"is now {final}" in loser.json()["detail"]
    certificates = Certificate.objects.filter(application=pending_case).count()
    assert (final, certificates, decisions(pending_case)) in {
        ("certified", 1, ("grant",)),
        ("withdrawn", 0, ("withdraw",)),
    }
