"""The PDF an issuance writes: atomically, signed PAdES B-B or B-T, its QR readable and
verifiable by tools that are not OpenCAS."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jwcrypto import jwk, jws
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from certificates import services
from certificates.models import Certificate
from certificates.services import certificate_issue

pytestmark = pytest.mark.django_db


def media_files(settings) -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def pdf_of(certificate: Certificate) -> bytes:
    with certificate.pdf.open("rb") as handle:
        return handle.read()


# --------------------------------------------------------------------------- atomic write


def test_it_never_leaves_half_a_pdf_under_its_final_name(granted, settings, monkeypatch):
    def write_half_then_die(handle, data: bytes) -> None:
        handle.write(data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(services, "_write_all", write_half_then_die)
    with pytest.raises(OSError, match="disk full"):
        certificate_issue(application_id=granted.pk)
    assert media_files(settings) == []  # neither the final name nor the partial file
    assert Certificate.objects.get().status == "issuing"

    monkeypatch.undo()
    certificate = certificate_issue(application_id=granted.pk)
    assert media_files(settings) == [f"certificates/{certificate.number}.pdf"]
    assert pdf_of(certificate).rstrip().endswith(b"%%EOF")


def test_it_removes_the_written_pdf_when_the_issuance_rolls_back(granted, settings, monkeypatch):
    from certificates import services as module

    real_audit = module.audit_record

    def audit_fails(**kwargs):
        if kwargs["action"] == "issue":
            raise RuntimeError("database went away")
        return real_audit(**kwargs)

    monkeypatch.setattr(module, "audit_record", audit_fails)
    with pytest.raises(RuntimeError, match="database went away"):
        certificate_issue(application_id=granted.pk)
    assert media_files(settings) == []
    certificate = Certificate.objects.get()
    assert certificate.status == "issuing" and not certificate.pdf and not certificate.jws


# A real SIGKILL between storing the PDF and committing: see test_killed_issuance.py.


# --------------------------------------------------------------------------- PAdES B-T


@pytest.fixture
def local_tsa():
    """An RFC 3161 time-stamp authority on 127.0.0.1 (pyHanko's test TSA, over real HTTP)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Time-Stamp Authority")])
    now = dt.datetime.now(tz=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(key, hashes.SHA256())
    )
    stamper = DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        tsa_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
    )
    requests: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(body)
            reply = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root = cert.public_bytes(serialization.Encoding.PEM)
    yield f"http://127.0.0.1:{server.server_address[1]}/tsa", requests, root
    server.shutdown()
    server.server_close()


def unsigned_attributes(pdf: bytes) -> list[str]:
    import re

    match = re.search(rb"/Contents\s*<([0-9a-fA-F]+)>", pdf)
    assert match
    der = bytes.fromhex(match.group(1).decode()).rstrip(b"\0")
    signer_info = cms.ContentInfo.load(der)["content"]["signer_infos"][0]
    attrs = signer_info["unsigned_attrs"]
    return [a["type"].native for a in attrs] if attrs.native else []


def test_it_signs_pades_b_b_without_a_time_stamp_authority(certificate):
    assert unsigned_attributes(pdf_of(certificate)) == []


def test_it_adds_a_signature_time_stamp_when_a_tsa_is_configured(granted, settings, local_tsa):
    url, requests, tsa_root = local_tsa
    settings.CERTIFICATE_TSA_URL = url
    roots = Path(settings.MEDIA_ROOT).parent / "tsa-roots.pem"
    roots.write_bytes(tsa_root)
    certificate = certificate_issue(application_id=granted.pk)
    pdf = pdf_of(certificate)
    # pyHanko asks once to size the signature's placeholder, then for the real token.
    assert requests
    assert unsigned_attributes(pdf) == ["signature_time_stamp_token"]
    # Without the TSA's root the signature stands but its time is not vouched for ...
    verdict = services.verify_pdf(pdf_bytes=pdf).signature
    assert (verdict.ok, verdict.code, verdict.timestamped_at) == (True, "valid", None)
    # ... with it, the verify page reports the authority's time.
    settings.CERTIFICATE_TSA_ROOTS_FILE = str(roots)
    verdict = services.verify_pdf(pdf_bytes=pdf).signature
    assert verdict.ok and verdict.code == "valid"
    assert verdict.timestamped_at is not None
    assert abs(verdict.timestamped_at - dt.datetime.now(tz=dt.UTC)) < dt.timedelta(minutes=5)
    if shutil.which("pdfsig"):
        assert "Signature Validation: Signature is Valid." in pdfsig(pdf, settings)


def test_it_keeps_the_certificate_issuing_when_the_tsa_is_unreachable(granted, settings):
    settings.CERTIFICATE_TSA_URL = "http://127.0.0.1:9/tsa"  # discard port: nobody listens
    with pytest.raises(Exception):  # noqa: B017 - pyHanko's own error type, whatever it is
        certificate_issue(application_id=granted.pk)
    assert Certificate.objects.get().status == "issuing" and media_files(settings) == []


# --------------------------------------------------------------------------- outside tools


def pdfsig(data: bytes, settings) -> str:
    folder = Path(settings.MEDIA_ROOT).parent / "pdfsig"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "doc.pdf").write_bytes(data)
    run = subprocess.run(
        ["pdfsig", "doc.pdf"], cwd=folder, capture_output=True, text=True, check=False
    )
    return run.stdout


def test_pdfsig_accepts_an_issued_certificate_and_reports_a_modified_one(certificate, settings):
    if shutil.which("pdfsig") is None:
        pytest.skip("pdfsig (poppler-utils) is not installed")
    pdf = pdf_of(certificate)
    good = pdfsig(pdf, settings)
    assert "Signature Validation: Signature is Valid." in good
    assert "Total document signed" in good
    assert "Signature Type: ETSI.CAdES.detached" in good
    tampered = pdf.replace(b"Helix Health Systems", b"Helix Wealth Systems", 1)
    assert tampered != pdf
    bad = pdfsig(tampered, settings)
    assert "Signature Validation:" in bad
    assert "Signature Validation: Signature is Valid." not in bad


def test_a_phone_camera_reads_the_qr_and_a_second_jose_library_verifies_it(
    certificate, settings, buyer
):
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    folder = Path(settings.MEDIA_ROOT).parent / "render"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "certificate.pdf").write_bytes(pdf_of(certificate))
    # 150 dpi: about what a phone camera gets from a printed A4 page.
    subprocess.run(
        ["pdftoppm", "-r", "150", "-f", "1", "-l", "1", "-png", "certificate.pdf", "page"],
        cwd=folder,
        check=True,
    )
    (png,) = folder.glob("page*.png")
    (text,) = [r.text for r in zxingcpp.read_barcodes(Image.open(png))]
    url, token = text.split("#", 1)
    assert url == "https://opencas.example/verify/qr"
    assert token == certificate.jws

    keyset = jwk.JWKSet.from_json(json.dumps(buyer.get("/.well-known/jwks.json").json()))
    parsed = jws.JWS()
    parsed.deserialize(token)
    assert parsed.jose_header == {"alg": "Ed25519", "kid": certificate.jws_key.kid}
    parsed.allowed_algs = ["Ed25519"]
    parsed.verify(keyset.get_key(certificate.jws_key.kid))
    payload = json.loads(parsed.payload)
    assert payload["num"] == certificate.number
    assert payload["ven"] == "Helix Health Systems"
    assert payload["vun"] == f"{certificate.valid_until:%Y-%m-%d}"

    forged = token.rsplit(".", 1)[0] + "." + "A" * 86
    tampered = jws.JWS()
    tampered.deserialize(forged)
    tampered.allowed_algs = ["Ed25519"]
    with pytest.raises(jws.InvalidJWSSignature):
        tampered.verify(keyset.get_key(certificate.jws_key.kid))
    # The page the phone opens says the same.
    page = buyer.post("/verify/", {"qr": io.StringIO(text).read()}).content.decode()
    assert "<strong>Valid</strong>" in page


def test_a_failed_attempt_never_deletes_the_pdf_a_committed_certificate_points_at(
    certificate, settings
):
    # A losing concurrent attempt fails after storing under the winner's name: the cleanup
    # leaves the committed certificate's file alone, and still removes a true orphan.
    services._discard_unless_committed(certificate.pdf.name)
    assert media_files(settings) == [certificate.pdf.name]
    assert pdf_of(certificate).rstrip().endswith(b"%%EOF")
    orphan = services.store_pdf_atomically(name="certificates/CAS-2026-999999.pdf", data=b"%PDF-")
    services._discard_unless_committed(orphan)
    assert media_files(settings) == [certificate.pdf.name]


def test_finishing_pending_cases_goes_on_past_a_failing_one(
    make_application,
    lab,
    assessor_carol,
    reviewer_dave,
    officer_erin,
    officer_frank,
    monkeypatch,
    caplog,
    settings,
):
    from cas import services as cas_services
    from certificates import tasks

    monkeypatch.setattr(tasks.issue_certificate, "delay", lambda application_id: None)
    granted = [
        cas_services.application_grant(
            application=make_application(
                "decision_pending",
                lab_org=lab,
                recorder=assessor_carol,
                reviewer=reviewer_dave,
                officer=officer_erin,
                version=version,
            ),
            by=officer_frank,
        )
        for version in ("7.0", "7.1")
    ]
    real_issue = services.certificate_issue

    def first_fails(*, application_id):
        if application_id == granted[0].pk:
            raise OSError("disk full")
        return real_issue(application_id=application_id)

    monkeypatch.setattr(services, "certificate_issue", first_fails)
    with caplog.at_level("ERROR", logger="opencas.certificates"):
        done = tasks.finish_pending_certificates.delay().get()
    assert len(done) == 1
    assert Certificate.objects.get(number=done[0]).application_id == granted[1].pk
    assert f"application {granted[0].pk} failed" in caplog.text and "disk full" in caplog.text

    monkeypatch.setattr(services, "certificate_issue", real_issue)
    (second,) = tasks.finish_pending_certificates.delay().get()
    assert Certificate.objects.get(number=second).application_id == granted[0].pk
    assert settings.CELERY_BEAT_SCHEDULE["certificates-finish-pending"]["task"] == (
        "certificates.tasks.finish_pending_certificates"
    )


def test_the_pdf_prints_the_full_address_of_the_published_keys(granted, settings):
    settings.SITE_URL = "https://cas.example.org"
    certificate = certificate_issue(application_id=granted.pk)
    from pypdf import PdfReader

    text = " ".join(PdfReader(io.BytesIO(pdf_of(certificate))).pages[0].extract_text().split())
    assert "published keys at https://cas.example.org/.well-known/jwks.json" in text


def test_production_settings_require_site_url(tmp_path):
    import os
    import sys

    base = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in {"SITE_URL", "DJANGO_SETTINGS_MODULE"}}
    env["SECRET_KEY"] = "a-production-secret-for-this-test-only"
    run = subprocess.run(
        [sys.executable, "-c", "import cas.settings"],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0 and "SITE_URL is required in production" in run.stderr
    env["SITE_URL"] = "https://cas.example.org"
    run = subprocess.run(
        [sys.executable, "-c", "import cas.settings"],
        cwd=base,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
