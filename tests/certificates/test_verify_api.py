"""The public verification API: no login, the same verdicts and messages as the page."""

from __future__ import annotations

import io

import pytest
from rest_framework.test import APIClient

from certificates import lifecycle

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def pdf_file(data: bytes, name: str = "certificate.pdf") -> io.BytesIO:
    file = io.BytesIO(data)
    file.name = name
    return file


def stored_pdf(certificate) -> bytes:
    with certificate.pdf.open("rb") as handle:
        return handle.read()


def test_it_verifies_a_number_without_a_login(certificate, api):
    response = api.get(f"/api/verify/{certificate.number}/")
    assert response.status_code == 200
    body = response.json()
    assert body["signature"]["code"] == "valid" and body["signature"]["ok"] is True
    assert body["status"]["code"] == "active" and body["status"]["ok"] is True
    assert body["status"]["number"] == certificate.number
    assert body["status"]["valid_until"] == certificate.valid_until.isoformat()


def test_it_answers_404_with_a_verdict_for_an_unknown_number(db, api):
    response = api.get("/api/verify/CAS-2026-424242/")
    assert response.status_code == 404
    status = response.json()["status"]
    assert status["code"] == "unknown"
    assert status["message"] == "No certificate CAS-2026-424242 was issued by this scheme."


def test_it_gives_since_and_why_of_a_suspension(certificate, officer_erin, api):
    lifecycle.certificate_suspend(certificate=certificate, by=officer_erin, reason="NC-12 open")
    status = api.get(f"/api/verify/{certificate.number}/").json()["status"]
    assert status["code"] == "suspended" and status["ok"] is False
    assert status["reason"] == "NC-12 open" and status["since"]
    assert status["message"].endswith(": NC-12 open")


def test_it_verifies_an_uploaded_pdf(certificate, api):
    response = api.post(
        "/api/verify/", {"pdf": pdf_file(stored_pdf(certificate))}, format="multipart"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["signature"]["code"] == "valid" and body["status"]["code"] == "active"


def test_it_says_why_an_uploaded_pdf_was_changed(certificate, api):
    data = bytearray(stored_pdf(certificate))
    data[data.index(b"Helix Health Systems")] = ord("X")
    body = api.post("/api/verify/", {"pdf": pdf_file(bytes(data))}, format="multipart").json()
    assert body["signature"]["code"] == "modified"
    assert body["signature"]["message"].startswith("The document was changed after it was signed")
    assert body["status"]["code"] == "claimed"


def test_it_verifies_a_qr_text_sent_as_json(certificate, api):
    qr = f"https://opencas.example/verify/qr#{certificate.jws}"
    body = api.post("/api/verify/", {"qr": qr}, format="json").json()
    assert body["signature"]["code"] == "valid"
    assert body["payload"]["num"] == certificate.number
    assert body["status"]["code"] == "active"


def test_it_says_a_file_that_is_not_a_pdf_is_not_a_pdf(db, api):
    body = api.post("/api/verify/", {"pdf": pdf_file(b"GIF89a", "cat.gif")}, format="multipart")
    assert body.json()["signature"] == {
        "ok": False,
        "code": "not_pdf",
        "message": "This file is not a PDF.",
        "signer": "",
        "signed_at": None,
        "timestamped_at": None,
    }


def test_it_answers_404_to_an_unknown_number_posted_as_to_one_in_the_address(db, api):
    posted = api.post("/api/verify/", {"number": "CAS-2026-424242"}, format="json")
    addressed = api.get("/api/verify/CAS-2026-424242/")
    assert posted.status_code == addressed.status_code == 404
    assert posted.json() == addressed.json()
    assert posted.json()["status"]["code"] == "unknown"


def test_it_answers_200_to_a_known_number_posted(certificate, api):
    response = api.post("/api/verify/", {"number": certificate.number}, format="json")
    assert response.status_code == 200
    assert response.json()["status"]["code"] == "active"


def test_it_refuses_an_empty_file_as_the_page_does(db, api):
    response = api.post("/api/verify/", {"pdf": pdf_file(b"")}, format="multipart")
    assert response.status_code == 400
    assert response.json()["detail"] == "The file is empty: send the certificate PDF."


@pytest.mark.parametrize(
    "data", [b"GIF89a", b"%PDF-1.7\n\x00\x01 broken beyond repair"], ids=["not-pdf", "damaged"]
)
def test_it_says_no_number_could_be_read_from_a_file_it_cannot_read(db, api, data):
    body = api.post("/api/verify/", {"pdf": pdf_file(data)}, format="multipart").json()
    assert body["status"]["code"] == "unknown"
    assert body["status"]["message"] == "no certificate number could be read from this file."


def test_it_shows_the_number_upper_cased_whoever_asked_first(db, api):
    api.get("/api/verify/cas-2026-424242/")
    for spelling in ("Cas-2026-424242", "cas-2026-424242"):
        body = api.get(f"/api/verify/{spelling}/").json()
        assert (
            body["status"]["message"] == "No certificate CAS-2026-424242 was issued by this scheme."
        )


def test_it_says_text_not_shaped_like_a_number_is_not_one(db, api):
    body = api.post("/api/verify/", {"number": "CAS 2026\x00<b>"}, format="json").json()
    assert body["status"]["message"] == "CAS 2026<b> is not a certificate number."


def test_it_documents_the_unsupported_media_type_answer(db, api, officer_erin):
    api.force_authenticate(officer_erin)
    verify = api.get("/api/schema/", {"format": "json"}).json()["paths"]["/api/verify/"]["post"]
    assert {"200", "400", "404", "413", "415", "429"} <= set(verify["responses"])
    refused = APIClient().post("/api/verify/", b"number", content_type="text/plain")
    assert refused.status_code == 415


def test_it_asks_for_something_to_verify(db, api):
    response = api.post("/api/verify/", {}, format="json")
    assert response.status_code == 400
    assert "Give a PDF file (pdf)" in response.json()["detail"]


def test_it_refuses_a_file_over_ten_megabytes(db, api):
    big = pdf_file(b"%PDF-1.7\n" + b"0" * (10 * 1024 * 1024))
    response = api.post("/api/verify/", {"pdf": big}, format="multipart")
    assert response.status_code == 413
    assert "larger than 10 MB" in response.json()["detail"]


def test_it_documents_the_verify_endpoints_in_the_schema(db, api, officer_erin):
    api.force_authenticate(officer_erin)
    schema = api.get("/api/schema/", {"format": "json"}).json()
    assert "/api/verify/" in schema["paths"]
    number = schema["paths"]["/api/verify/{number}/"]["get"]
    assert number["security"] == [{}] or not number.get("security")
    assert {"200", "404", "429"} <= set(number["responses"])


def test_it_answers_a_changed_status_at_once_after_a_cached_answer(certificate, officer_erin, api):
    assert api.get(f"/api/verify/{certificate.number}/").json()["status"]["code"] == "active"
    lifecycle.certificate_withdraw(certificate=certificate, by=officer_erin, reason="Gone")
    status = api.get(f"/api/verify/{certificate.number}/").json()["status"]
    assert status["code"] == "withdrawn" and status["reason"] == "Gone"
