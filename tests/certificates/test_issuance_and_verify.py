"""Issuance and the public verify page, through HTTP and the real PDF bytes."""

from __future__ import annotations

import io

import pytest
from django.utils import timezone
from support import client_for, page_text

from cas import services
from certificates.models import Certificate
from certificates.services import (
    certificate_content,
    certificate_issue,
    certificate_number_allocate,
)
from certificates.tasks import issue_certificate

pytestmark = pytest.mark.django_db


@pytest.fixture
def granted(pending_case, officer_frank):
    """A case granted by Frank; its issuance task has not run (tests run in a transaction)."""
    return services.application_grant(application=pending_case, by=officer_frank)


@pytest.fixture
def certificate(granted):
    return certificate_issue(application_id=granted.pk)


def pdf_bytes(certificate: Certificate) -> bytes:
    with certificate.pdf.open("rb") as handle:
        return handle.read()


def verify_upload(client, data: bytes, name: str = "certificate.pdf") -> str:
    upload = io.BytesIO(data)
    upload.name = name
    response = client.post("/verify/", {"pdf": upload})
    assert response.status_code == 200
    return page_text(response)


def verdicts(page: str) -> tuple[str, str]:
    signature, status = page.split('id="status-verdict"')
    return signature.split('id="signature-verdict"')[1], status


def test_it_numbers_certificates_by_year_and_sequence(certificate):
    assert certificate.number == f"CAS-{certificate.decision_date:%Y}-000001"
    assert certificate.status == "active"


def test_it_issues_exactly_one_certificate_when_the_task_runs_twice(certificate):
    issue_certificate.delay(certificate.application_id)
    issue_certificate.delay(certificate.application_id)
    assert Certificate.objects.filter(application=certificate.application).count() == 1
    assert Certificate.objects.get().number == certificate.number


def test_it_finishes_a_certificate_left_issuing_by_a_killed_task(granted):
    # A worker killed after allocating the number leaves the row 'issuing', with no PDF.
    today = timezone.localdate()
    Certificate.objects.create(
        number=certificate_number_allocate(year=today.year),
        application=granted,
        content=certificate_content(application=granted),
        decision_date=today,
        valid_from=today,
        valid_until=today,
    )
    finished = certificate_issue(application_id=granted.pk)
    assert finished.status == "active" and finished.number == f"CAS-{today:%Y}-000001"
    assert Certificate.objects.count() == 1 and finished.pdf_sha256


def test_it_verifies_an_untouched_pdf_as_valid_and_active(certificate, buyer):
    signature, status = verdicts(verify_upload(buyer, pdf_bytes(certificate)))
    assert "<strong>Valid</strong>" in signature
    assert "Active" in status and certificate.number in status


def test_it_says_a_pdf_with_one_changed_byte_was_modified(certificate, buyer):
    data = bytearray(pdf_bytes(certificate))
    position = data.index(b"Helix Health Systems")
    data[position] = ord("X")
    signature, status = verdicts(verify_upload(buyer, bytes(data)))
    assert "<strong>Not valid</strong>" in signature
    assert "The document was changed after it was signed" in signature
    # The real certificate's status is reported, without vouching for the altered copy.
    assert f"Claims to be {certificate.number}" in status
    assert "not a faithful copy" in status


def test_it_says_a_file_that_is_not_a_pdf_is_not_a_pdf(certificate, buyer):
    signature, status = verdicts(verify_upload(buyer, b"GIF89a not a certificate", "cat.gif"))
    assert "<strong>Not valid</strong>" in signature
    assert "not a PDF" in signature


def test_it_says_an_unknown_number_was_never_issued(db, buyer):
    page = page_text(buyer.post("/verify/", {"number": "CAS-2026-999999"}))
    assert "No certificate CAS-2026-999999 was issued by this scheme." in page


def test_it_verifies_a_number_with_the_stored_pdf_and_the_status(certificate, buyer):
    signature, status = verdicts(page_text(buyer.get(f"/verify/{certificate.number}")))
    assert "<strong>Valid</strong>" in signature and "Active" in status


def test_it_verifies_the_qr_text_against_the_published_key(certificate, buyer):
    qr_text = f"https://opencas.example/verify/qr#{certificate.jws}"
    signature, status = verdicts(page_text(buyer.post("/verify/", {"qr": qr_text})))
    assert "<strong>Valid</strong>" in signature and certificate.number in status


def test_it_refuses_a_qr_text_whose_payload_was_altered(certificate, buyer):
    header, payload, sig = certificate.jws.split(".")
    forged = f"{header}.{payload[:-2]}AA.{sig}"
    signature, status = verdicts(page_text(buyer.post("/verify/", {"qr": forged})))
    assert "<strong>Not valid</strong>" in signature


def test_it_asks_for_something_to_verify_on_an_empty_form(db, buyer):
    response = buyer.post("/verify/", {})
    assert response.status_code == 400
    assert "Give a certificate number" in page_text(response)


def test_it_publishes_the_signing_key_in_the_jwks(certificate, buyer):
    jwks = buyer.get("/.well-known/jwks.json").json()
    assert [key["kid"] for key in jwks["keys"]] == [certificate.jws_key.kid]
    assert all("d" not in key for key in jwks["keys"])


def test_it_shows_the_certificate_publicly_with_its_scope_and_status(certificate, buyer):
    page = page_text(buyer.get(f"/certificates/{certificate.number}/"))
    for expected in ("Active", "HelixEHR", "XDS.b", "PDQm", "BELAC 612-TEST", "Brussels"):
        assert expected in page


def test_it_answers_404_for_an_unknown_certificate_page(db, buyer):
    assert buyer.get("/certificates/CAS-2026-424242/").status_code == 404


def test_it_keeps_the_grant_when_signing_fails_and_finishes_issuance_later(
    pending_case, officer_frank, monkeypatch, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    from certificates import signing

    application = pending_case

    def broken_signer(**kwargs):
        raise OSError("signing device unavailable")

    monkeypatch.setattr(signing, "sign_pdf", broken_signer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(officer_frank).post(f"/applications/{application.pk}/grant/")
    assert response.status_code == 302
    certificate = Certificate.objects.get(application=application)
    assert certificate.status == "issuing" and not certificate.pdf
    assert Certificate.objects.public().count() == 0

    monkeypatch.undo()
    call_command("issue_pending_certificates", stdout=io.StringIO())
    certificate = Certificate.objects.get(pk=certificate.pk)
    assert certificate.status == "active" and certificate.pdf_sha256
