"""The offline verifier, run as a buyer would: `python -m certificates.verify` in a separate
process with no Django settings, no database URL and every socket connection refused, on
real issued PDFs and QR texts and the files the test site publishes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from certificates import lifecycle, services, signing
from certificates.models import Certificate
from certificates.pdf import render_certificate_pdf
from certificates.status_list import status_list_publish

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
# The verifier runs with connect() refused: a network access would fail the test.
NO_NETWORK = """
import socket, sys
def refused(*args, **kwargs):
    raise RuntimeError("the offline verifier tried to use the network")
socket.socket.connect = refused
socket.create_connection = refused
from certificates.verify import main
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict:
        return json.loads(self.out)


def run_verifier(*args: object) -> Run:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PYTHONPATH"}
    }
    done = subprocess.run(
        [sys.executable, "-c", NO_NETWORK, *(str(a) for a in args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@dataclass
class Published:
    jwks: Path
    status_list: Path
    roots: Path

    def args(self) -> list[object]:
        return ["--jwks", self.jwks, "--status-list", self.status_list, "--roots", self.roots]


@pytest.fixture
def publish(buyer, tmp_path):
    """Sign a fresh status list and download what the site publishes, as a buyer would."""

    def download() -> Published:
        status_list_publish()
        folder = tmp_path / "published"
        folder.mkdir(exist_ok=True)
        files = Published(folder / "jwks.json", folder / "status.jws", folder / "roots.pem")
        files.jwks.write_bytes(buyer.get("/.well-known/jwks.json").content)
        files.status_list.write_bytes(buyer.get("/.well-known/opencas-status-list.jws").content)
        files.roots.write_bytes(buyer.get("/.well-known/opencas-pdf-roots.pem").content)
        return files

    return download


def pdf_file(certificate, tmp_path: Path, data: bytes | None = None, name: str = "") -> Path:
    if data is None:
        with certificate.pdf.open("rb") as handle:
            data = handle.read()
    path = tmp_path / (name or f"{certificate.number}.pdf")
    path.write_bytes(data)
    return path


def qr_text(certificate) -> str:
    return f"https://opencas.example/verify/qr#{certificate.jws}"


def unsigned_pdf(certificate) -> bytes:
    return render_certificate_pdf(
        content=services.render_content(
            certificate, qr_text="https://example.org", key_id="none", status="Active"
        )
    )


# --- valid ---


def test_it_passes_an_untouched_pdf_as_valid_and_active(certificate, publish, tmp_path):
    run = run_verifier(pdf_file(certificate, tmp_path), *publish().args())
    assert run.code == 0, run
    assert f"Certificate {certificate.number}" in run.out
    assert "Signature: VALID (valid)" in run.out
    assert "Status:    ACTIVE (active): active as of" in run.out


def test_it_passes_a_qr_text_as_valid_and_active_in_json(certificate, publish):
    run = run_verifier("--qr", qr_text(certificate), "--json", *publish().args())
    assert run.code == 0, run
    result = run.json
    assert result["signature"]["code"] == "valid" and result["status"]["code"] == "active"
    assert result["payload"]["num"] == certificate.number
    assert result["exit_code"] == 0


def test_it_never_imports_django():
    probe = (
        "import sys, certificates.verify; print(sorted(m for m in sys.modules if 'django' in m))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- signature failures: exit 1 ---


def test_it_says_a_pdf_with_one_changed_byte_was_modified(certificate, publish, tmp_path):
    data = bytearray(pdf_file(certificate, tmp_path).read_bytes())
    data[data.index(b"Helix Health Systems")] = ord("X")
    run = run_verifier(pdf_file(certificate, tmp_path, bytes(data), "t.pdf"), *publish().args())
    assert run.code == 1, run
    assert "Signature: NOT VALID (modified): The document was changed after it was signed" in (
        run.out
    )
    assert "no status: the signature could not be trusted" in run.out


def test_it_says_a_pdf_signed_by_a_self_made_ca_has_an_unknown_signer(
    certificate, publish, tmp_path
):
    pki = signing.generate_dev_pki(organisation="Forgers Ltd")
    forged = signing.sign_pdf(
        pdf_bytes=unsigned_pdf(certificate),
        key_pem=pki.issuing_key_pem,
        cert_pem=pki.issuing_cert_pem,
        chain_pems=[pki.root_cert_pem],
    )
    run = run_verifier(pdf_file(certificate, tmp_path, forged, "f.pdf"), *publish().args())
    assert run.code == 1, run
    assert "(untrusted): The signature is intact but was made by OpenCAS Certificate Signing" in (
        run.out
    )
    assert "not backed by a trusted certificate authority" in run.out


def test_it_says_an_unsigned_pdf_carries_no_signature(certificate, publish, tmp_path):
    path = pdf_file(certificate, tmp_path, unsigned_pdf(certificate), "u.pdf")
    run = run_verifier(path, *publish().args())
    assert run.code == 1, run
    assert "(unsigned): The PDF does not carry a digital signature." in run.out


def test_it_says_a_file_that_is_not_a_pdf_is_not_a_pdf(certificate, publish, tmp_path):
    path = pdf_file(certificate, tmp_path, b"GIF89a a cat", "cat.gif")
    run = run_verifier(path, *publish().args())
    assert run.code == 1, run
    assert "(not_pdf): This file is not a PDF." in run.out


def test_it_says_a_damaged_pdf_is_unreadable(certificate, publish, tmp_path):
    path = pdf_file(certificate, tmp_path, b"%PDF-1.7\n\x00\x01 broken beyond repair", "d.pdf")
    run = run_verifier(path, *publish().args())
    assert run.code == 1, run
    assert "(unreadable): The PDF is damaged and cannot be read." in run.out


def test_it_says_an_altered_qr_payload_has_a_bad_signature(certificate, publish):
    header, payload, sig = certificate.jws.split(".")
    forged = f"{header}.{payload[:-2]}AA.{sig}"
    run = run_verifier("--qr", forged, *publish().args())
    assert run.code == 1, run
    assert "(bad_signature)" in run.out


def test_it_says_an_unreadable_qr_text_is_malformed(certificate, publish):
    run = run_verifier("--qr", "https://opencas.example/verify/qr#not-a-token", *publish().args())
    assert run.code == 1, run
    assert "(malformed): The code does not contain a readable signed payload." in run.out


def test_it_says_a_qr_signed_with_a_revoked_key_proves_nothing(certificate, publish):
    services.signing_key_revoke(kid=certificate.jws_key.kid, reason="key compromise")
    run = run_verifier("--qr", qr_text(certificate), *publish().args())
    assert run.code == 1, run
    kid = certificate.jws_key.kid
    assert f"(key_revoked): signature key revoked: the key {kid} that signed" in run.out


def test_it_says_a_qr_signed_with_an_unpublished_key_has_an_unknown_key(certificate, publish):
    published = publish()
    published.jwks.write_text('{"keys": []}')
    run = run_verifier("--qr", qr_text(certificate), "--jwks", published.jwks)
    assert run.code == 1, run
    kid = certificate.jws_key.kid
    assert f"(unknown_key): The payload was signed with an unknown key ({kid})" in run.out


def test_it_still_refuses_an_old_pdf_signed_with_a_revoked_key_after_the_reissue(
    certificate, publish, tmp_path
):
    old_copy = pdf_file(certificate, tmp_path, name="old-copy.pdf")
    services.signing_key_revoke(kid=certificate.pdf_key.kid, reason="key compromise")
    services.certificate_reissue(certificate=certificate, reason="new key after compromise")
    published = publish()
    assert "signature_key_revoked" not in published.status_list.read_text()

    run = run_verifier(old_copy, *published.args())
    assert run.code == 1, run
    revoked_kid = certificate.pdf_key.kid
    assert (
        f"(key_revoked): signature key revoked: this PDF is intact but its signing key "
        f"{revoked_kid} was revoked" in run.out
    )
    reissued = Certificate.objects.get(pk=certificate.pk)
    assert run_verifier(pdf_file(reissued, tmp_path), *published.args()).code == 0


def test_it_says_a_pdf_signed_with_a_revoked_key_proves_nothing(certificate, publish, tmp_path):
    path = pdf_file(certificate, tmp_path)
    services.signing_key_revoke(kid=certificate.pdf_key.kid, reason="key compromise")
    run = run_verifier(path, *publish().args())
    assert run.code == 1, run
    assert "(key_revoked): signature key revoked: this PDF is intact" in run.out


# --- status not active: exit 2 ---


@pytest.mark.parametrize(
    ("change", "reason", "shown"),
    [
        (lifecycle.certificate_suspend, "Open nonconformity NC-12", "SUSPENDED (suspended)"),
        (lifecycle.certificate_withdraw, "Product discontinued", "WITHDRAWN (withdrawn)"),
        (lifecycle.certificate_revoke, "False claims", "REVOKED (revoked)"),
    ],
)
def test_it_reports_a_listed_status_with_since_and_why(
    certificate, officer_erin, publish, tmp_path, change, reason, shown
):
    change(certificate=certificate, by=officer_erin, reason=reason)
    run = run_verifier(pdf_file(certificate, tmp_path), *publish().args())
    assert run.code == 2, run
    assert "Signature: VALID" in run.out
    assert f"Status:    {shown}: since 20" in run.out and reason in run.out


def test_it_reports_a_superseded_certificate_and_its_replacement(
    certificate, issue_another, officer_erin, publish
):
    newer = issue_another("5.2")
    lifecycle.certificate_supersede(
        certificate=certificate,
        replacement_number=newer.number,
        by=officer_erin,
        reason="New version certified",
    )
    run = run_verifier("--qr", qr_text(certificate), *publish().args())
    assert run.code == 2, run
    assert "SUPERSEDED (superseded): since 20" in run.out
    assert f"replaced by {newer.number}: New version certified" in run.out


def test_it_reports_a_certificate_expired_by_the_scheduler(certificate, publish, tmp_path):
    import datetime as dt

    lifecycle.certificates_expire(today=certificate.valid_until + dt.timedelta(days=1))
    run = run_verifier(pdf_file(certificate, tmp_path), *publish().args())
    assert run.code == 2, run
    assert "EXPIRED (expired): since 20" in run.out and "validity ended on" in run.out


def test_it_reports_expiry_from_the_signed_validity_before_the_list_does(
    granted, settings, publish, tmp_path
):
    settings.CERTIFICATE_VALIDITY_DAYS = -1  # valid until yesterday; not yet expired by beat
    certificate = services.certificate_issue(application_id=granted.pk)
    files = publish()
    for source in (pdf_file(certificate, tmp_path), None):
        args = [source] if source else ["--qr", qr_text(certificate)]
        run = run_verifier(*args, *files.args())
        assert run.code == 2, run
        assert f"EXPIRED (expired): it was valid until {certificate.valid_until:%Y-%m-%d}." in (
            run.out
        )


@pytest.fixture
def expired_certificate(granted, settings):
    settings.CERTIFICATE_VALIDITY_DAYS = -1  # valid until yesterday; not yet expired by beat
    return services.certificate_issue(application_id=granted.pk)


def expired_runs(certificate, tmp_path, *extra: object) -> list[Run]:
    return [
        run_verifier(pdf_file(certificate, tmp_path), *extra),
        run_verifier("--qr", qr_text(certificate), *extra),
    ]


def test_it_reports_expiry_from_the_signed_validity_without_a_status_list(
    expired_certificate, publish, tmp_path
):
    files = publish()
    for run in expired_runs(
        expired_certificate, tmp_path, "--jwks", files.jwks, "--roots", files.roots
    ):
        assert run.code == 2, run
        until = expired_certificate.valid_until
        assert f"EXPIRED (expired): it was valid until {until:%Y-%m-%d}." in run.out


def test_it_reports_expiry_from_the_signed_validity_with_an_expired_status_list(
    expired_certificate, settings, publish, tmp_path
):
    settings.CERTIFICATE_STATUS_LIST_VALIDITY_HOURS = 0
    for run in expired_runs(expired_certificate, tmp_path, *publish().args()):
        assert run.code == 2, run
        assert "EXPIRED (expired): it was valid until" in run.out


def test_it_reports_expiry_from_the_signed_validity_with_an_untrusted_status_list(
    expired_certificate, publish, tmp_path
):
    files = publish()
    header, payload, sig = files.status_list.read_text().split(".")
    files.status_list.write_text(f"{header}.{payload[:-4]}AAAA.{sig}")
    for run in expired_runs(expired_certificate, tmp_path, *files.args()):
        assert run.code == 2, run
        assert "EXPIRED (expired)" in run.out


# --- status unknown: exit 4 ---


def test_it_says_the_status_is_unknown_without_a_status_list(certificate, publish, tmp_path):
    files = publish()
    run = run_verifier(pdf_file(certificate, tmp_path), "--roots", files.roots)
    assert run.code == 4, run
    assert "Signature: VALID" in run.out
    assert "(unknown): no status list given (--status-list)" in run.out


def test_it_refuses_a_status_list_past_its_validity(certificate, settings, publish):
    settings.CERTIFICATE_STATUS_LIST_VALIDITY_HOURS = 0
    run = run_verifier("--qr", qr_text(certificate), *publish().args())
    assert run.code == 4, run
    assert "(list_expired): the status list was valid until" in run.out


def test_it_refuses_a_status_list_whose_signature_fails(certificate, publish):
    files = publish()
    header, payload, sig = files.status_list.read_text().split(".")
    files.status_list.write_text(f"{header}.{payload[:-4]}AAAA.{sig}")
    run = run_verifier("--qr", qr_text(certificate), *files.args())
    assert run.code == 4, run
    assert "(list_untrusted): the status list cannot be trusted" in run.out


def test_it_refuses_a_status_list_signed_with_a_key_not_in_the_jwks(certificate, publish, tmp_path):
    files = publish()
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"keys": [certificate.jws_key.public_jwk]}))
    stranger = signing.generate_ed25519_private_pem()
    files.status_list.write_text(
        signing.sign_jws(payload={"certificates": []}, private_pem=stranger, kid="jws-stranger")
    )
    run = run_verifier("--qr", qr_text(certificate), *files.args())
    assert run.code == 4, run
    assert "(list_untrusted)" in run.out and "unknown key (jws-stranger)" in run.out


# --- usage and input errors: exit 3 ---


def test_it_exits_3_for_a_missing_file(certificate, publish, tmp_path):
    run = run_verifier(tmp_path / "nothing.pdf", *publish().args())
    assert run.code == 3, run
    assert "Cannot read the PDF file" in run.err


def test_it_exits_3_for_a_jwks_file_that_is_not_json(certificate, publish, tmp_path):
    files = publish()
    files.jwks.write_text("<html>not json</html>")
    run = run_verifier("--qr", qr_text(certificate), *files.args())
    assert run.code == 3, run
    assert "is not JSON" in run.err


def test_it_exits_3_when_neither_a_pdf_nor_a_qr_text_is_given():
    run = run_verifier("--jwks", "jwks.json")
    assert run.code == 3, run
    assert "give either a PDF file or --qr TEXT" in run.err


def test_it_documents_its_exit_codes_in_the_help():
    run = run_verifier("--help")
    assert run.code == 0
    for line in ("0  signature valid and certificate active", "1  signature not valid"):
        assert line in run.out
    assert "4  signature valid, status unknown" in run.out
