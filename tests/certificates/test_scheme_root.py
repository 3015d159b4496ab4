"""One lasting scheme root CA issues every PDF signing certificate (issue 6, review item 1)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.management import CommandError, call_command

from cas.models import AuditEntry
from certificates import keys, signing
from certificates.models import Certificate, SigningKey
from certificates.services import certificate_issue

pytestmark = pytest.mark.django_db


def signing_keys(*args: str) -> str:
    out = io.StringIO()
    call_command("signing_keys", *args, stdout=out)
    return out.getvalue()


def pdf_of(certificate: Certificate) -> bytes:
    with certificate.pdf.open("rb") as handle:
        return handle.read()


def pdfsig(data: bytes, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "doc.pdf").write_bytes(data)
    run = subprocess.run(["pdfsig", "doc.pdf"], cwd=folder, capture_output=True, text=True)
    return run.stdout


def subjects(pem: bytes) -> list[str]:
    return [
        c.subject.rfc4514_string()
        for c in x509.load_pem_x509_certificates(pem)  # every certificate in the bundle
    ]


def test_rotation_keeps_the_published_root_and_both_pdfs_validate(
    certificate, issue_another, buyer, settings, tmp_path
):
    roots_before = buyer.get("/.well-known/opencas-pdf-roots.pem").content
    assert subjects(roots_before) == [
        f"CN={settings.SCHEME_NAME} Development Root CA,O={settings.SCHEME_NAME}"
    ]
    old_pdf = pdf_of(certificate)

    signing_keys("rotate", "--purpose", "pdf")
    second = issue_another("5.2")
    assert second.pdf_key != certificate.pdf_key

    roots_after = buyer.get("/.well-known/opencas-pdf-roots.pem").content
    assert roots_after == roots_before
    # The signing certificate of the new key is issued by the same root as the old one.
    old_cert = x509.load_pem_x509_certificate(certificate.pdf_key.certificate_pem.encode())
    new_cert = x509.load_pem_x509_certificate(second.pdf_key.certificate_pem.encode())
    root = x509.load_pem_x509_certificate(roots_before)
    for cert in (old_cert, new_cert):
        cert.verify_directly_issued_by(root)
    for pdf in (old_pdf, pdf_of(second)):
        verdict = signing.verify_pdf_signature(pdf_bytes=pdf, trust_roots_pem=[roots_after])
        assert verdict.ok and verdict.trusted, verdict.message
        if shutil.which("pdfsig"):
            assert "Signature Validation: Signature is Valid." in pdfsig(pdf, tmp_path / "sig")
    # Exactly one root, its private key encrypted in the key store like the others.
    (root_key,) = SigningKey.objects.filter(purpose="root")
    stored = (Path(settings.SIGNING_KEY_DIR) / f"{root_key.kid}.pem").read_bytes()
    assert stored.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    serialization.load_pem_private_key(stored, password=keys.passphrase())


def test_revoking_the_pdf_key_reuses_the_root(
    certificate, buyer, django_capture_on_commit_callbacks
):
    roots_before = buyer.get("/.well-known/opencas-pdf-roots.pem").content
    with django_capture_on_commit_callbacks(execute=True):
        signing_keys("revoke", certificate.pdf_key.kid, "--reason", "key compromise")
    signing_keys("reissue")
    reissued = Certificate.objects.get(pk=certificate.pk)
    assert buyer.get("/.well-known/opencas-pdf-roots.pem").content == roots_before
    verdict = signing.verify_pdf_signature(
        pdf_bytes=pdf_of(reissued), trust_roots_pem=[roots_before]
    )
    assert verdict.ok and verdict.trusted
    assert SigningKey.objects.filter(purpose="root").count() == 1
    with pytest.raises(CommandError, match="scheme root CA"):
        signing_keys("revoke", SigningKey.objects.get(purpose="root").kid, "--reason", "x")


def test_production_names_the_root_after_the_scheme_without_development(db, settings):
    settings.SIGNING_KEY_PASSPHRASE_GENERATE = False
    settings.SIGNING_KEY_PASSPHRASE = "from the vault"
    settings.SCHEME_NAME = "Example Scheme"
    signing_keys("create")
    root = SigningKey.objects.get(purpose="root")
    assert subjects(root.certificate_pem.encode()) == ["CN=Example Scheme Root CA,O=Example Scheme"]


def test_production_refuses_to_make_keys_on_first_use(granted, settings):
    settings.SIGNING_KEY_PASSPHRASE_GENERATE = False
    settings.SIGNING_KEY_PASSPHRASE = "from the vault"
    with pytest.raises(keys.KeyStoreError, match="run `python manage.py signing_keys create`"):
        certificate_issue(application_id=granted.pk)
    assert SigningKey.objects.count() == 0
    assert Certificate.objects.get().status == "issuing"
    signing_keys("create")
    assert certificate_issue(application_id=granted.pk).status == "active"


def test_an_operator_imports_their_own_root(db, settings, tmp_path):
    cert_pem, key_pem = signing.generate_root_ca(
        organisation="Operator", common_name="Operator Root CA"
    )
    (tmp_path / "ca.pem").write_bytes(cert_pem)
    (tmp_path / "ca.key").write_bytes(key_pem)
    other_cert, _ = signing.generate_root_ca(organisation="Other", common_name="Other Root CA")
    (tmp_path / "other.pem").write_bytes(other_cert)
    with pytest.raises(CommandError, match="does not belong to the CA certificate"):
        signing_keys(
            "create", "--ca-cert", str(tmp_path / "other.pem"), "--ca-key", str(tmp_path / "ca.key")
        )
    assert SigningKey.objects.count() == 0

    out = signing_keys(
        "create", "--ca-cert", str(tmp_path / "ca.pem"), "--ca-key", str(tmp_path / "ca.key")
    )
    assert "root: imported" in out
    pdf_key = SigningKey.objects.get(purpose="pdf")
    assert pdf_key.root_certificate_pem == cert_pem.decode()
    x509.load_pem_x509_certificate(pdf_key.certificate_pem.encode()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(cert_pem)
    )
    assert keys.trusted_pdf_roots() == [cert_pem]


def test_the_rotate_audit_entry_names_the_retired_key(certificate):
    old = certificate.pdf_key.kid
    signing_keys("rotate", "--purpose", "pdf")
    new = SigningKey.objects.get(purpose="pdf", status="active")
    entry = AuditEntry.objects.filter(object_type="certificates.signingkey", action="rotate").get()
    assert entry.object_id == str(new.pk)
    assert old in entry.reason
    # The keys made on first use (embedded mode) are audited too.
    created = AuditEntry.objects.filter(object_type="certificates.signingkey", action="create")
    assert created.count() == 3  # root, jws, pdf
