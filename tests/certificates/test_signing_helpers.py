from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pypdf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pypdf.annotations import FreeText

from certificates.pdf import CertificateContent, ScopeLine, qr_text_for, render_certificate_pdf
from certificates.signing import (
    DevPKI,
    JwsError,
    generate_dev_pki,
    generate_ed25519_private_pem,
    public_jwk,
    sign_jws,
    sign_pdf,
    verify_jws,
    verify_pdf_signature,
)

KID = "opencas-2026-01"
PAYLOAD = {
    "n": "CAS-2026-000001",
    "v": "Acme Health Systems",
    "p": "AcmePACS",
    "pv": "4.2",
    "st": "valid",
    "vf": "2026-01-02",
    "vu": "2029-01-01",
    "sc": ["XDS.b/DOCREG/AOD", "PIX/PIXMGR/"],
}


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def scope(count: int) -> tuple[ScopeLine, ...]:
    return tuple(
        ScopeLine(
            profile_keyword="XDS.b",
            profile_name="Cross-Enterprise Document Sharing",
            actor_keyword=f"DOCREG{i}",
            actor_name="Document Registry",
            option_keyword="AOD",
            option_name="Asynchronous Web Services Exchange",
            tf_revision="Rev. 20.0",
        )
        for i in range(count)
    )


@pytest.fixture(scope="module")
def ed_key() -> bytes:
    return generate_ed25519_private_pem()


@pytest.fixture(scope="module")
def jwks(ed_key: bytes) -> dict[str, Any]:
    return {"keys": [public_jwk(private_pem=ed_key, kid=KID)]}


@pytest.fixture(scope="module")
def token(ed_key: bytes) -> str:
    return sign_jws(payload=PAYLOAD, private_pem=ed_key, kid=KID)


@pytest.fixture(scope="module")
def pki() -> DevPKI:
    return generate_dev_pki()


@pytest.fixture(scope="module")
def content(token: str) -> CertificateContent:
    return CertificateContent(
        number="CAS-2026-000001",
        vendor_name="Acme Health Systems",
        vendor_address="1 Main Street\nSpringfield",
        product_name="AcmePACS",
        product_version="4.2",
        scope=scope(3),
        lab_name="Example Test Lab",
        lab_accreditation_number="1-2345",
        accreditation_body="COFRAC",
        scheme_name="IHE Conformity Assessment Scheme",
        scheme_version="1.0",
        decision_date=date(2026, 1, 2),
        valid_from=date(2026, 1, 2),
        valid_until=date(2029, 1, 1),
        status="Valid",
        verify_url="https://cas.example.org/verify/CAS-2026-000001",
        qr_text=qr_text_for(base_url="https://cas.example.org/", token=token),
        key_id=KID,
    )


@pytest.fixture(scope="module")
def unsigned_pdf(content: CertificateContent) -> bytes:
    return render_certificate_pdf(content=content)


@pytest.fixture(scope="module")
def signed_pdf(unsigned_pdf: bytes, pki: DevPKI) -> bytes:
    return sign_pdf(
        pdf_bytes=unsigned_pdf,
        key_pem=pki.issuing_key_pem,
        cert_pem=pki.issuing_cert_pem,
        chain_pems=[pki.root_cert_pem],
    )


def first_range_end(pdf: bytes) -> int:
    match = re.search(rb"/ByteRange\s*\[\s*0\s+(\d+)", pdf)
    assert match
    return int(match.group(1))


def flip(pdf: bytes, position: int) -> bytes:
    data = bytearray(pdf)
    data[position] ^= 0x01
    return bytes(data)


def verdict(pdf: bytes, pki: DevPKI) -> Any:
    return verify_pdf_signature(pdf_bytes=pdf, trust_roots_pem=[pki.root_cert_pem])


# --------------------------------------------------------------------------- JWS


def test_it_round_trips_a_jws_and_returns_the_payload_and_kid(
    token: str, jwks: dict[str, Any]
) -> None:
    assert verify_jws(token=token, jwks=jwks) == (PAYLOAD, KID)


def test_it_signs_compact_sorted_json_with_an_ed25519_header(token: str) -> None:
    header, payload, _ = token.split(".")
    assert json.loads(b64url_decode(header)) == {"alg": "Ed25519", "kid": KID}
    assert (
        b64url_decode(payload)
        == json.dumps(PAYLOAD, separators=(",", ":"), sort_keys=True).encode()
    )


def test_it_publishes_a_public_jwk_that_a_second_implementation_can_verify_with(
    token: str, jwks: dict[str, Any]
) -> None:
    jwk = jwks["keys"][0]
    assert {k: jwk[k] for k in ("kty", "crv", "kid", "use", "alg")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "kid": KID,
        "use": "sig",
        "alg": "Ed25519",
    }
    assert "d" not in jwk
    header, payload, signature = token.split(".")
    key = Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"]))
    key.verify(b64url_decode(signature), f"{header}.{payload}".encode())  # raises if invalid
    assert json.loads(b64url_decode(payload)) == PAYLOAD


def test_it_rejects_a_token_whose_kid_is_not_in_the_jwks(ed_key: bytes) -> None:
    other = sign_jws(payload=PAYLOAD, private_pem=ed_key, kid="retired-key")
    with pytest.raises(JwsError) as err:
        verify_jws(token=other, jwks={"keys": [public_jwk(private_pem=ed_key, kid=KID)]})
    assert err.value.code == "unknown_key"
    assert "retired-key" in str(err.value)


def test_it_rejects_a_tampered_payload_as_a_bad_signature(token: str, jwks: dict[str, Any]) -> None:
    header, _, signature = token.split(".")
    forged = json.dumps({**PAYLOAD, "vu": "2099-01-01"}, separators=(",", ":"), sort_keys=True)
    with pytest.raises(JwsError) as err:
        verify_jws(token=f"{header}.{b64url_encode(forged.encode())}.{signature}", jwks=jwks)
    assert err.value.code == "bad_signature"


def test_it_rejects_a_token_signed_by_another_key_with_the_same_kid(
    jwks: dict[str, Any],
) -> None:
    impostor = sign_jws(payload=PAYLOAD, private_pem=generate_ed25519_private_pem(), kid=KID)
    with pytest.raises(JwsError) as err:
        verify_jws(token=impostor, jwks=jwks)
    assert err.value.code == "bad_signature"


@pytest.mark.parametrize("garbage", ["", "garbage", "a.b.c", "....", "eyJhbGciOiJFZDI1NTE5In0"])
def test_it_rejects_garbage_as_malformed(garbage: str, jwks: dict[str, Any]) -> None:
    with pytest.raises(JwsError) as err:
        verify_jws(token=garbage, jwks=jwks)
    assert err.value.code == "malformed"
    assert str(err.value)


# --------------------------------------------------------------------------- dev PKI


def test_it_generates_a_p256_root_ca_and_a_signing_certificate_issued_by_it(
    pki: DevPKI,
) -> None:
    root = x509.load_pem_x509_certificate(pki.root_cert_pem)
    leaf = x509.load_pem_x509_certificate(pki.issuing_cert_pem)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert leaf.issuer == root.subject
    leaf.verify_directly_issued_by(root)
    assert root.public_key().curve.name == "secp256r1"
    assert pki.issuing_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


# --------------------------------------------------------------------------- PDF signatures


def test_it_validates_a_rendered_and_signed_pdf_against_the_dev_root(
    signed_pdf: bytes, pki: DevPKI
) -> None:
    result = verdict(signed_pdf, pki)
    assert (result.ok, result.code) == (True, "valid")
    assert result.intact and result.trusted and result.covers_whole_file
    assert result.signer == "OpenCAS Certificate Signing"
    assert result.signed_at is not None and result.signed_at.tzinfo is not None
    assert b"/ETSI.CAdES.detached" in signed_pdf


def test_it_reports_a_one_byte_change_in_the_vendor_name_as_modified(
    signed_pdf: bytes, pki: DevPKI
) -> None:
    position = signed_pdf.index(b"Acme Health Systems")
    assert position < first_range_end(signed_pdf)
    tampered = signed_pdf[:position] + b"X" + signed_pdf[position + 1 :]
    result = verdict(tampered, pki)
    assert (result.ok, result.code) == (False, "modified")
    assert not result.intact


@pytest.mark.parametrize("fraction", [0.1, 0.33, 0.5, 0.66, 0.9, 0.99])
def test_it_reports_a_byte_change_anywhere_in_the_signed_range_as_modified(
    fraction: float, signed_pdf: bytes, unsigned_pdf: bytes, pki: DevPKI
) -> None:
    # 0.99 of the original revision lands in its xref/trailer, which breaks parsing.
    position = int(len(unsigned_pdf) * fraction)
    result = verdict(flip(signed_pdf, position), pki)
    assert (result.ok, result.code) == (False, "modified")


def test_it_reports_appended_garbage_as_modified(signed_pdf: bytes, pki: DevPKI) -> None:
    result = verdict(signed_pdf + b"\n% appended after signing\n", pki)
    assert (result.ok, result.code) == (False, "modified")
    assert result.intact and not result.covers_whole_file


def test_it_reports_an_incremental_update_adding_an_annotation_as_modified(
    signed_pdf: bytes, pki: DevPKI
) -> None:
    writer = pypdf.PdfWriter(io.BytesIO(signed_pdf), incremental=True)
    writer.add_annotation(
        page_number=0, annotation=FreeText(text="Valid until 2099", rect=(50, 50, 250, 90))
    )
    buffer = io.BytesIO()
    writer.write(buffer)
    updated = buffer.getvalue()
    assert updated.startswith(signed_pdf) and len(updated) > len(signed_pdf)
    result = verdict(updated, pki)
    assert (result.ok, result.code) == (False, "modified")
    assert not result.covers_whole_file


def test_it_reports_bytes_that_are_not_a_pdf_as_not_pdf(pki: DevPKI) -> None:
    assert verdict(b"hello", pki).code == "not_pdf"
    assert verdict(b"", pki).code == "not_pdf"


def test_it_reports_a_truncated_pdf_as_unreadable(unsigned_pdf: bytes, pki: DevPKI) -> None:
    result = verdict(unsigned_pdf[: len(unsigned_pdf) // 2], pki)
    assert (result.ok, result.code) == (False, "unreadable")


def test_it_reports_an_unsigned_pdf_as_unsigned(unsigned_pdf: bytes, pki: DevPKI) -> None:
    result = verdict(unsigned_pdf, pki)
    assert (result.ok, result.code) == (False, "unsigned")


def test_it_reports_an_intact_pdf_checked_against_another_root_as_untrusted(
    signed_pdf: bytes,
) -> None:
    other_root = generate_dev_pki().root_cert_pem
    result = verify_pdf_signature(pdf_bytes=signed_pdf, trust_roots_pem=[other_root])
    assert (result.ok, result.code) == (False, "untrusted")
    assert result.intact and not result.trusted
    assert "OpenCAS Certificate Signing" in result.message


# --------------------------------------------------------------------------- rendering


def test_it_builds_the_qr_text_from_the_base_url_and_token() -> None:
    assert qr_text_for(base_url="https://cas.example.org/", token="a.b.c") == (
        "https://cas.example.org/verify/qr#a.b.c"
    )


def test_it_lets_pypdf_extract_the_labels_and_vendor_name_from_the_signed_pdf(
    signed_pdf: bytes, content: CertificateContent
) -> None:
    reader = pypdf.PdfReader(io.BytesIO(signed_pdf))
    text = " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)
    labels = [
        "IHE Conformity Assessment Certificate",
        "Certificate number",
        "Vendor",
        "Product",
        "Version",
        "Scope",
        "Test laboratory",
        "Accreditation",
        "Scheme",
        "Decision date",
        "Valid from",
        "Valid until",
        "Status",
        "How to verify",
    ]
    values = [content.number, content.vendor_name, content.product_name, "DOCREG2", "COFRAC"]
    missing = [word for word in labels + values if word not in text]
    assert missing == []
    assert content.verify_url in text and "/.well-known/jwks.json" in text
    assert reader.metadata is not None
    assert reader.metadata.title == f"IHE Conformity Assessment Certificate {content.number}"
    assert reader.metadata.author == content.lab_name


def test_it_encodes_the_qr_text_in_a_qr_code_that_decodes_from_the_rendered_page(
    signed_pdf: bytes, content: CertificateContent, tmp_path: Path
) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    zxingcpp = pytest.importorskip("zxingcpp")
    image_module = pytest.importorskip("PIL.Image")
    (tmp_path / "signed.pdf").write_bytes(signed_pdf)
    subprocess.run(  # noqa: S603
        ["pdftoppm", "-r", "150", "-f", "1", "-l", "1", "-png", "signed.pdf", "page"],  # noqa: S607
        cwd=tmp_path,
        check=True,
    )
    (png,) = tmp_path.glob("page*.png")
    decoded = [r.text for r in zxingcpp.read_barcodes(image_module.open(png))]
    assert decoded == [content.qr_text]


def test_it_passes_pdfsig_for_the_signed_file_and_fails_it_after_tampering(
    signed_pdf: bytes, tmp_path: Path
) -> None:
    if shutil.which("pdfsig") is None:
        pytest.skip("pdfsig (poppler-utils) is not installed")
    tampered = signed_pdf.replace(b"Acme Health Systems", b"Acme Wealth Systems", 1)

    def pdfsig(data: bytes, name: str) -> str:
        (tmp_path / name).write_bytes(data)
        run = subprocess.run(  # noqa: S603
            ["pdfsig", name],  # noqa: S607
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        return run.stdout

    good, bad = pdfsig(signed_pdf, "signed.pdf"), pdfsig(tampered, "tampered.pdf")
    assert "Signature Validation: Signature is Valid." in good
    assert "Total document signed" in good
    assert "Signature Type: ETSI.CAdES.detached" in good
    assert "Signature Validation: Signature is Valid." not in bad
    assert "Signature Validation:" in bad


def test_it_paginates_a_scope_of_sixty_aipos_and_keeps_it_signable(
    content: CertificateContent, pki: DevPKI
) -> None:
    pdf = render_certificate_pdf(content=replace(content, scope=scope(60)))
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) > 1
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "DOCREG0" in text and "DOCREG59" in text
    signed = sign_pdf(
        pdf_bytes=pdf,
        key_pem=pki.issuing_key_pem,
        cert_pem=pki.issuing_cert_pem,
        chain_pems=[pki.root_cert_pem],
    )
    assert verdict(signed, pki).code == "valid"
