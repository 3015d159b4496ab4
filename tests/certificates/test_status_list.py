"""The signed status list: what an offline verifier downloads to learn about suspensions."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
import time_machine
from django.core.management import call_command
from jwcrypto import jwk, jws

from certificates import lifecycle
from certificates.models import Certificate, SigningKey, StatusList
from certificates.services import certificate_issue
from certificates.tasks import publish_status_list

pytestmark = pytest.mark.django_db


def verify_with_jwcrypto(token: str, jwks: dict) -> dict:
    """An independent JOSE implementation, given only the published JWKS."""
    keyset = jwk.JWKSet.from_json(json.dumps(jwks))
    parsed = jws.JWS()
    parsed.deserialize(token)
    kid = parsed.jose_header["kid"]
    parsed.allowed_algs = ["Ed25519"]
    parsed.verify(keyset.get_key(kid))  # raises InvalidJWSSignature when it does not verify
    return json.loads(parsed.payload)


def test_it_lists_a_suspension_in_a_list_signed_with_a_published_key(
    certificate, officer_erin, buyer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.certificate_suspend(
            certificate=certificate, by=officer_erin, reason="Open nonconformity NC-12"
        )
    response = buyer.get("/.well-known/opencas-status-list.jws")
    assert response.status_code == 200 and response["Content-Type"] == "application/jose"
    document = verify_with_jwcrypto(
        response.content.decode(), buyer.get("/.well-known/jwks.json").json()
    )
    (entry,) = document["certificates"]
    assert entry["number"] == certificate.number
    assert entry["status"] == "suspended"
    assert entry["reason"] == "Open nonconformity NC-12"
    assert dt.datetime.fromisoformat(entry["since"]).date() == dt.datetime.now(tz=dt.UTC).date()
    issued = dt.datetime.fromisoformat(document["issued_at"])
    valid_until = dt.datetime.fromisoformat(document["valid_until"])
    assert valid_until - issued == dt.timedelta(hours=24)
    assert document["exp"] - document["iat"] == 24 * 3600
    # The .json view is the very document that was signed.
    assert json.loads(buyer.get("/.well-known/opencas-status-list.json").content) == document


def test_it_regenerates_the_list_on_every_change_and_serves_the_stored_one(
    certificate, officer_erin, buyer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.certificate_suspend(certificate=certificate, by=officer_erin, reason="audit")
    assert StatusList.objects.count() == 1
    first = buyer.get("/.well-known/opencas-status-list.jws").content
    assert buyer.get("/.well-known/opencas-status-list.jws").content == first
    assert StatusList.objects.count() == 1  # served, not recomputed

    suspended = Certificate.objects.get(pk=certificate.pk)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.certificate_reinstate(certificate=suspended, by=officer_erin, reason="fixed")
    assert StatusList.objects.count() == 2
    latest = json.loads(buyer.get("/.well-known/opencas-status-list.json").content)
    assert latest["certificates"] == []


def test_a_request_never_signs_and_answers_503_until_a_list_exists(
    granted, buyer, django_capture_on_commit_callbacks
):
    for url in ("/.well-known/opencas-status-list.jws", "/.well-known/opencas-status-list.json"):
        response = buyer.get(url)
        assert response.status_code == 503
        assert "No status list has been published yet" in response.content.decode()
    assert StatusList.objects.count() == 0 and SigningKey.objects.count() == 0

    # The first issuance publishes the first list once it commits.
    with django_capture_on_commit_callbacks(execute=True):
        certificate_issue(application_id=granted.pk)
    assert StatusList.objects.count() == 1
    assert buyer.get("/.well-known/opencas-status-list.jws").status_code == 200


def test_a_lapsed_list_is_served_as_stored_and_beat_re_signs_it(certificate, buyer):
    publish_status_list.delay().get()
    stored = StatusList.objects.get()
    later = dt.datetime.now(tz=dt.UTC) + dt.timedelta(hours=25)
    with time_machine.travel(later, tick=False):
        assert buyer.get("/.well-known/opencas-status-list.jws").content.decode() == stored.jws
        assert StatusList.objects.count() == 1  # an anonymous GET wrote nothing
        publish_status_list.delay().get()  # what beat does
        token = buyer.get("/.well-known/opencas-status-list.jws").content.decode()
        jwks = buyer.get("/.well-known/jwks.json").json()
    assert StatusList.objects.count() == 2
    document = verify_with_jwcrypto(token, jwks)
    assert dt.datetime.fromisoformat(document["valid_until"]) > later


def test_it_re_signs_the_list_with_the_new_key_after_a_rotation(
    certificate, buyer, django_capture_on_commit_callbacks
):
    publish_status_list.delay().get()
    first = buyer.get("/.well-known/opencas-status-list.jws").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("signing_keys", "rotate", "--purpose", "jws", stdout=io.StringIO())
    token = buyer.get("/.well-known/opencas-status-list.jws").content.decode()
    assert token != first
    active = SigningKey.objects.get(purpose="jws", status="active")
    assert json.loads(jws.JWS.from_jose_token(token).objects["protected"])["kid"] == active.kid
    verify_with_jwcrypto(token, buyer.get("/.well-known/jwks.json").json())
