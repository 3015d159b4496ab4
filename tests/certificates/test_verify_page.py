"""The public verify page: every way a verification fails has its own plain message, the
status verdict says since when and why, and nothing a stranger sends gets a 500."""

from __future__ import annotations

import datetime as dt
import io
import random

import pytest
from support import page_text

from certificates import lifecycle, services, signing
from certificates.pdf import render_certificate_pdf

pytestmark = pytest.mark.django_db


def pdf_bytes(certificate) -> bytes:
    with certificate.pdf.open("rb") as handle:
        return handle.read()


def upload(client, data: bytes, name: str = "certificate.pdf"):
    file = io.BytesIO(data)
    file.name = name
    return client.post("/verify/", {"pdf": file})


def verdicts(response) -> tuple[str, str]:
    assert response.status_code == 200, response.status_code
    page = page_text(response)
    signature, status = page.split('id="status-verdict"')
    return signature.split('id="signature-verdict"')[1], status


def unsigned_pdf(certificate) -> bytes:
    return render_certificate_pdf(
        content=services.render_content(
            certificate, qr_text="https://example.org", key_id="none", status="Active"
        )
    )


def qr_of(certificate) -> str:
    return f"https://opencas.example/verify/qr#{certificate.jws}"


# --- signature failures ---


def test_it_says_a_pdf_signed_by_a_self_made_ca_has_an_unknown_signer(certificate, buyer):
    pki = signing.generate_dev_pki(organisation="Forgers Ltd")
    forged = signing.sign_pdf(
        pdf_bytes=unsigned_pdf(certificate),
        key_pem=pki.issuing_key_pem,
        cert_pem=pki.issuing_cert_pem,
        chain_pems=[pki.root_cert_pem],
    )
    signature, status = verdicts(upload(buyer, forged))
    assert "<strong>Not valid</strong>" in signature
    assert "not backed by a trusted certificate authority" in signature
    assert f"Claims to be {certificate.number}" in status and "not a faithful copy" in status


def test_it_says_an_unsigned_pdf_carries_no_signature(certificate, buyer):
    signature, status = verdicts(upload(buyer, unsigned_pdf(certificate)))
    assert "The PDF does not carry a digital signature." in signature
    assert f"Claims to be {certificate.number}" in status


def test_it_says_a_damaged_pdf_cannot_be_read(db, buyer):
    signature, status = verdicts(upload(buyer, b"%PDF-1.7\n\x00\x01 broken beyond repair"))
    assert "The PDF is damaged and cannot be read." in signature
    assert "<strong>Unknown</strong>: no certificate number could be read from this file." in (
        status
    )
    assert "issued by this scheme" not in status


def test_it_says_no_number_could_be_read_from_a_file_that_is_not_a_pdf(db, buyer):
    _signature, status = verdicts(upload(buyer, b"GIF89a a cat", "cat.gif"))
    assert "no certificate number could be read from this file." in status


def test_it_says_no_number_could_be_read_from_an_unsigned_pdf_without_one(db, buyer):
    from pypdf import PdfWriter

    blank = PdfWriter()
    blank.add_blank_page(width=595, height=842)
    data = io.BytesIO()
    blank.write(data)
    signature, status = verdicts(upload(buyer, data.getvalue()))
    assert "The PDF does not carry a digital signature." in signature
    assert "no certificate number could be read from this file." in status


def test_it_says_a_pdf_signed_with_a_revoked_key_proves_nothing(certificate, buyer):
    services.signing_key_revoke(kid=certificate.pdf_key.kid, reason="key compromise")
    signature, status = verdicts(upload(buyer, pdf_bytes(certificate)))
    assert "signature key revoked: re-issue pending" in signature
    assert f"its signing key {certificate.pdf_key.kid} was revoked" in signature
    assert "Signature key revoked" in status


def test_it_notices_a_key_revoked_after_the_number_was_verified(certificate, buyer):
    """The stored PDF's verdict is cached; a revocation must show at once all the same."""
    signature, _ = verdicts(buyer.get(f"/verify/{certificate.number}"))
    assert "<strong>Valid</strong>" in signature
    services.signing_key_revoke(kid=certificate.pdf_key.kid, reason="key compromise")
    signature, status = verdicts(buyer.get(f"/verify/{certificate.number}"))
    assert "<strong>Not valid</strong>" in signature
    assert "signature key revoked: re-issue pending" in signature
    assert "Signature key revoked" in status


def test_it_says_a_qr_signed_with_a_revoked_key_proves_nothing(certificate, buyer):
    services.signing_key_revoke(kid=certificate.jws_key.kid, reason="key compromise")
    signature, _ = verdicts(buyer.post("/verify/", {"qr": qr_of(certificate)}))
    assert f"the key {certificate.jws_key.kid} that signed this QR code was revoked" in signature


@pytest.mark.parametrize("text", ["hello", "a.b.c", "https://opencas.example/verify/qr#", "é☃"])
def test_it_says_an_unreadable_qr_text_is_unreadable(db, buyer, text):
    signature, status = verdicts(buyer.post("/verify/", {"qr": text}))
    assert "<strong>Not valid</strong>" in signature
    assert "The code does not contain a readable signed payload." in signature
    assert "no status: the QR code could not be trusted." in status


# --- status verdicts: status, since when, why ---


@pytest.mark.parametrize(
    ("change", "reason", "title"),
    [
        (lifecycle.certificate_suspend, "Open nonconformity NC-12", "Suspended"),
        (lifecycle.certificate_withdraw, "Product discontinued", "Withdrawn"),
        (lifecycle.certificate_revoke, "False claims of conformity", "Revoked"),
    ],
)
def test_it_shows_a_changed_status_with_since_when_and_why(
    certificate, officer_erin, buyer, change, reason, title
):
    change(certificate=certificate, by=officer_erin, reason=reason)
    today = dt.datetime.now(tz=dt.UTC).date()
    for response in (
        buyer.get(f"/verify/{certificate.number}"),
        buyer.post("/verify/", {"qr": qr_of(certificate)}),
        upload(buyer, pdf_bytes(certificate)),
    ):
        _signature, status = verdicts(response)
        assert f"<strong>{title}</strong>: since {today:%Y-%m-%d}: {reason}" in status


def test_it_names_the_replacement_of_a_superseded_certificate(
    certificate, issue_another, officer_erin, buyer
):
    newer = issue_another("5.2")
    lifecycle.certificate_supersede(
        certificate=certificate,
        replacement_number=newer.number,
        by=officer_erin,
        reason="New version certified",
    )
    _signature, status = verdicts(buyer.get(f"/verify/{certificate.number}"))
    assert "<strong>Superseded</strong>" in status
    assert f"replaced by {newer.number}: New version certified" in status


def test_it_says_a_certificate_past_its_validity_has_expired(granted, settings, buyer):
    settings.CERTIFICATE_VALIDITY_DAYS = -1  # the expiry job has not run yet
    certificate = services.certificate_issue(application_id=granted.pk)
    _signature, status = verdicts(buyer.get(f"/verify/{certificate.number}"))
    assert f"<strong>Expired</strong>: it was valid until {certificate.valid_until:%Y-%m-%d}." in (
        status
    )


def test_it_says_a_certificate_expired_by_the_scheduler_has_expired(certificate, buyer):
    lifecycle.certificates_expire(today=certificate.valid_until + dt.timedelta(days=1))
    _signature, status = verdicts(buyer.get(f"/verify/{certificate.number}"))
    assert "<strong>Expired</strong>: since" in status
    assert f"validity ended on {certificate.valid_until:%Y-%m-%d}" in status


def test_it_shows_an_active_certificate_since_its_issue_and_its_validity(certificate, buyer):
    _signature, status = verdicts(buyer.get(f"/verify/{certificate.number}"))
    assert f"<strong>Active</strong>: since {certificate.issued_at:%Y-%m-%d}; valid from" in status
    assert f"until {certificate.valid_until:%Y-%m-%d}" in status


# --- bad requests ---


def test_it_refuses_a_file_over_ten_megabytes_with_a_plain_message(db, buyer):
    response = upload(buyer, b"%PDF-1.7\n" + b"0" * (10 * 1024 * 1024))
    assert response.status_code == 413
    assert "The file is larger than 10 MB" in page_text(response)


def test_it_asks_for_a_pdf_when_the_file_is_empty(db, buyer):
    response = upload(buyer, b"")
    assert response.status_code == 400
    assert "The file is empty" in page_text(response)


def test_it_says_an_unknown_number_on_the_page_address_was_never_issued(db, buyer):
    _signature, status = verdicts(buyer.get("/verify/CAS-2026-424242"))
    assert "No certificate CAS-2026-424242 was issued by this scheme." in status


def test_it_shows_a_number_upper_cased_even_from_a_page_cached_for_another_spelling(
    certificate, buyer
):
    buyer.get(f"/verify/{certificate.number.lower()}")
    response = buyer.get(f"/verify/{certificate.number.title()}")
    page = page_text(response)
    assert f'value="{certificate.number}"' in page
    assert certificate.number.lower() not in page and certificate.number.title() not in page


def test_it_shows_an_unknown_number_upper_cased(db, buyer):
    buyer.get("/verify/cas-2026-424242")
    _signature, status = verdicts(buyer.get("/verify/Cas-2026-424242"))
    assert "No certificate CAS-2026-424242 was issued by this scheme." in status


def test_it_says_text_that_is_not_a_number_is_not_one_without_repeating_a_nul(db, buyer):
    response = buyer.get("/verify/CAS%00X")
    _signature, status = verdicts(response)
    assert "<strong>Unknown</strong>: CASX is not a certificate number." in status
    assert b"\x00" not in response.content


def test_it_never_answers_500_to_hostile_input(certificate, buyer):
    rng = random.Random(7)
    good = pdf_bytes(certificate)
    token = certificate.jws
    numbers = ["\x00", "CAS-2026-\x00001", "' OR 1=1 --", "x" * 500, "%00", "../../etc"]
    qr_texts = [
        token[::-1],
        token.replace(".", "", 1),
        token + "." + token,
        "\x00" * 10,
        "#" * 100,
        "eyJhbGciOiJub25lIn0.e30.",  # alg "none"
        "eyJhbGciOiJFZDI1NTE5Iiwia2lkIjpbXX0.e30.AAAA",  # kid not a string
    ]
    pdfs = [
        good[: len(good) // 2],
        good.replace(b"/ByteRange", b"/ByteRangX", 1),
        b"%PDF-" + bytes(rng.getrandbits(8) for _ in range(4096)),
        bytes(rng.getrandbits(8) for _ in range(4096)),
    ]
    for _ in range(10):
        mutated = bytearray(good)
        for _ in range(5):
            mutated[rng.randrange(len(mutated))] = rng.getrandbits(8)
        pdfs.append(bytes(mutated))
    responses = [buyer.get(f"/verify/{n}") for n in numbers]
    responses += [buyer.post("/verify/", {"number": n}) for n in numbers]
    responses += [buyer.post("/verify/", {"qr": q}) for q in qr_texts]
    responses += [upload(buyer, p) for p in pdfs]
    responses += [buyer.get(f"/api/verify/{n}/") for n in numbers if "/" not in n]
    responses += [
        buyer.post("/api/verify/", {"qr": q}, content_type="application/json") for q in qr_texts
    ]
    for response in responses:
        assert response.status_code < 500, response.content[:500]
    assert all(
        'id="signature-verdict"' in page_text(r)
        for r in responses
        if r.status_code == 200 and "html" in r["Content-Type"]
    )


def test_it_shows_a_suspension_at_once_on_a_page_seen_before(certificate, officer_erin, buyer):
    """Pages for a number are cached by the certificate's state; a change is a new state."""
    _signature, status = verdicts(buyer.get(f"/verify/{certificate.number}"))
    assert "<strong>Active</strong>" in status
    lifecycle.certificate_suspend(certificate=certificate, by=officer_erin, reason="NC-12 open")
    _signature, status = verdicts(buyer.get(f"/verify/{certificate.number}"))
    assert "<strong>Suspended</strong>" in status and "NC-12 open" in status


def test_it_verifies_by_number_in_one_query_once_the_page_was_seen(
    certificate, buyer, django_assert_num_queries
):
    buyer.get(f"/verify/{certificate.number}")
    with django_assert_num_queries(1):
        _signature, status = verdicts(buyer.get(f"/verify/{certificate.number}"))
    assert "<strong>Active</strong>" in status


def test_it_shows_a_logged_in_person_their_own_page_not_a_strangers(
    certificate, vendor_alice, buyer
):
    from support import client_for

    buyer.get(f"/verify/{certificate.number}")  # cached for strangers
    client = client_for(vendor_alice)
    page = page_text(client.get(f"/verify/{certificate.number}"))
    assert "Log out" in page and "<strong>Active</strong>" in page
