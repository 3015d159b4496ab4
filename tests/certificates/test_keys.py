"""Signing keys: encrypted at rest, rotated, revoked, and every certificate re-issued."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import CommandError, call_command
from jwcrypto import jwk, jws
from support import client_for, page_text

from cas.models import AuditEntry
from certificates.models import Certificate, SigningKey

pytestmark = pytest.mark.django_db


def signing_keys(*args: str) -> str:
    out = io.StringIO()
    call_command("signing_keys", *args, stdout=out)
    return out.getvalue()


def key_files(settings) -> list[Path]:
    return sorted(Path(settings.SIGNING_KEY_DIR).glob("*.pem"))


def pdf_of(certificate: Certificate) -> bytes:
    with certificate.pdf.open("rb") as handle:
        return handle.read()


def words(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page_text(response)).split())


def jwcrypto_verify(token: str, jwks: dict) -> dict:
    keyset = jwk.JWKSet.from_json(json.dumps(jwks))
    parsed = jws.JWS()
    parsed.deserialize(token)
    parsed.allowed_algs = ["Ed25519"]
    parsed.verify(keyset.get_key(parsed.jose_header["kid"]))
    return json.loads(parsed.payload)


def upload(client, data: bytes) -> str:
    pdf = io.BytesIO(data)
    pdf.name = "certificate.pdf"
    return words(client.post("/verify/", {"pdf": pdf}))


# --------------------------------------------------------------------------- at rest


def test_it_never_stores_a_private_key_in_clear(certificate, settings):
    files = key_files(settings)
    assert len(files) == 3  # one Ed25519 (QR), one P-256 (PDF), the P-256 scheme root CA
    for path in files:
        data = path.read_bytes()
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert b"BEGIN PRIVATE KEY" not in data
        assert path.stat().st_mode & 0o077 == 0
    for key in SigningKey.objects.all():
        stored = json.dumps([key.public_jwk, key.certificate_pem, key.root_certificate_pem])
        assert "PRIVATE" not in stored and '"d"' not in stored
    # The embedded mode generated its development passphrase into var/, beside the keys.
    assert (Path(settings.SIGNING_KEY_DIR).parent / "signing-key-passphrase").exists()


def test_it_encrypts_under_the_passphrase_from_the_environment(settings):
    settings.SIGNING_KEY_PASSPHRASE = "correct horse battery staple"
    signing_keys("create")
    for path in key_files(settings):
        serialization.load_pem_private_key(
            path.read_bytes(), password=b"correct horse battery staple"
        )
        with pytest.raises(ValueError):
            serialization.load_pem_private_key(path.read_bytes(), password=b"wrong")
    assert not (Path(settings.SIGNING_KEY_DIR).parent / "signing-key-passphrase").exists()


def test_it_reads_the_passphrase_from_a_file(settings, tmp_path):
    secret = tmp_path / "passphrase"
    secret.write_text("from a mounted secret\n")
    settings.SIGNING_KEY_PASSPHRASE_FILE = str(secret)
    signing_keys("create", "--purpose", "jws")
    (path,) = key_files(settings)
    serialization.load_pem_private_key(path.read_bytes(), password=b"from a mounted secret")


def test_it_refuses_to_make_keys_in_production_without_a_passphrase(settings):
    settings.SIGNING_KEY_PASSPHRASE_GENERATE = False
    with pytest.raises(CommandError, match="set OPENCAS_KEY_PASSPHRASE"):
        signing_keys("create")
    assert SigningKey.objects.count() == 0 and key_files(settings) == []


def test_it_says_so_when_the_passphrase_does_not_open_the_keys(granted, settings):
    from certificates.keys import KeyStoreError
    from certificates.services import certificate_issue

    settings.SIGNING_KEY_PASSPHRASE = "the first one"
    signing_keys("create")
    settings.SIGNING_KEY_PASSPHRASE = "another one"
    with pytest.raises(KeyStoreError, match="cannot be decrypted with the configured passphrase"):
        certificate_issue(application_id=granted.pk)
    assert Certificate.objects.get().status == "issuing"


def test_it_encrypts_a_clear_key_left_by_an_older_version_before_using_it(granted, settings):
    from certificates import keys
    from certificates.services import certificate_issue

    jws_key, _ = keys.active_jws_key()
    path = Path(settings.SIGNING_KEY_DIR) / f"{jws_key.kid}.pem"
    clear = serialization.load_pem_private_key(
        path.read_bytes(), password=keys.passphrase()
    ).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(clear)
    keys._decrypted.clear()
    certificate = certificate_issue(application_id=granted.pk)
    assert certificate.jws_key == jws_key
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


# --------------------------------------------------------------------------- commands


def test_it_creates_lists_and_rotates_keys(db, settings):
    out = signing_keys("create")
    assert re.search(r"jws: created jws-\d{8}-[0-9a-f]{8}", out)
    assert "an active key exists already" in signing_keys("create")
    first = {k.purpose: k.kid for k in SigningKey.objects.all()}
    out = signing_keys("rotate", "--purpose", "jws")
    new_jws = SigningKey.objects.get(purpose="jws", status="active")
    assert new_jws.kid != first["jws"] and new_jws.kid in out
    assert SigningKey.objects.get(kid=first["jws"]).status == "retired"
    assert SigningKey.objects.get(kid=first["pdf"]).status == "active"
    listing = signing_keys("list")
    assert f"{first['jws']}" in listing and "retired" in listing
    assert re.search(rf"{new_jws.kid}\s+jws\s+active\s+0\s+0\s+in JWKS", listing)
    # The scheme root CA, the first jws and pdf keys, the rotated jws key.
    assert AuditEntry.objects.filter(object_type="certificates.signingkey").count() == 4


def test_it_refuses_to_revoke_an_unknown_key_or_without_a_reason(db):
    with pytest.raises(CommandError, match="No signing key 'nope'"):
        signing_keys("revoke", "nope", "--reason", "compromise")
    signing_keys("create")
    kid = SigningKey.objects.get(purpose="jws").kid
    with pytest.raises(CommandError, match="needs a reason"):
        signing_keys("revoke", kid, "--reason", " ")
    assert SigningKey.objects.get(kid=kid).status == "active"


# --------------------------------------------------------------------------- end to end


def test_it_rotates_revokes_and_reissues_end_to_end(
    certificate, issue_another, buyer, officer_frank, django_capture_on_commit_callbacks
):
    old_jws, old_pdf = certificate.jws_key, certificate.pdf_key
    old_bytes, old_token = pdf_of(certificate), certificate.jws

    signing_keys("rotate")
    second = issue_another("5.2")
    assert second.jws_key != old_jws and second.pdf_key != old_pdf
    jwks = buyer.get("/.well-known/jwks.json").json()
    # The retired key still signs a live certificate, so it stays published.
    assert [k["kid"] for k in jwks["keys"]] == [old_jws.kid, second.jws_key.kid]

    with django_capture_on_commit_callbacks(execute=True):
        out = signing_keys("revoke", old_jws.kid, "--reason", "key compromise")
        signing_keys("revoke", old_pdf.kid, "--reason", "key compromise")
    assert "1 certificate(s) show 'signature key revoked: re-issue pending'" in out

    page = words(buyer.get(f"/certificates/{certificate.number}/")).lower()
    assert "signature key revoked: re-issue pending" in page
    verify = words(buyer.get(f"/verify/{certificate.number}")).lower()
    assert "signature key revoked: re-issue pending" in verify
    qr = words(buyer.post("/verify/", {"qr": f"https://x/verify/qr#{old_token}"}))
    assert "Not valid" in qr and "signature key revoked: re-issue pending" in qr
    assert "signature key revoked: re-issue pending" in upload(buyer, old_bytes)
    jwks = buyer.get("/.well-known/jwks.json").json()
    assert [k["kid"] for k in jwks["keys"]] == [second.jws_key.kid]
    status_list = json.loads(buyer.get("/.well-known/opencas-status-list.json").content)
    assert status_list["certificates"] == [
        {
            "number": certificate.number,
            "status": "active",
            "since": status_list["certificates"][0]["since"],
            "reason": "",
            "signature_key_revoked": True,
        }
    ]
    manage_page = words(client_for(officer_frank).get("/certificates/manage/"))
    assert f"re-issue pending {certificate.number}" in manage_page

    with django_capture_on_commit_callbacks(execute=True):
        out = signing_keys("reissue")
    assert out.strip() == f"Re-issued: {certificate.number}"
    assert signing_keys("reissue").strip() == "Re-issued: nothing was pending"

    reissued = Certificate.objects.get(pk=certificate.pk)
    assert reissued.number == certificate.number and reissued.revision == 2
    assert reissued.jws_key == second.jws_key and reissued.pdf_key == second.pdf_key
    assert reissued.jws != old_token and pdf_of(reissued) != old_bytes
    assert reissued.pdf.name.endswith(f"{certificate.number}-r2.pdf")
    page = words(buyer.get(f"/certificates/{certificate.number}/"))
    assert "signature key revoked" not in page and "Active" in page
    assert "re-issued (active) (re-issued as revision 2: signature key" in page

    # Both certificates now verify: PDFs through the verify page, JWS with jwcrypto.
    jwks = buyer.get("/.well-known/jwks.json").json()
    for current in (reissued, Certificate.objects.get(pk=second.pk)):
        result = upload(buyer, pdf_of(current))
        assert "Signature Valid" in result and "Status Active" in result
        assert jwcrypto_verify(current.jws, jwks)["num"] == current.number
    # The copy signed with the revoked key is not vouched for any more.
    assert "Signature Valid" not in upload(buyer, old_bytes)
    status_list = json.loads(buyer.get("/.well-known/opencas-status-list.json").content)
    assert status_list["certificates"] == []


def test_it_drops_a_retired_key_from_the_jwks_once_nothing_live_needs_it(
    certificate, officer_erin, buyer
):
    from certificates import lifecycle

    old_kid = certificate.jws_key.kid
    signing_keys("rotate")
    new_kid = SigningKey.objects.get(purpose="jws", status="active").kid
    published = [k["kid"] for k in buyer.get("/.well-known/jwks.json").json()["keys"]]
    assert published == [old_kid, new_kid]

    lifecycle.certificate_withdraw(certificate=certificate, by=officer_erin, reason="discontinued")
    published = [k["kid"] for k in buyer.get("/.well-known/jwks.json").json()["keys"]]
    assert published == [new_kid]
    # Our own verify page still reads the old QR code, to say what became of the certificate.
    page = words(buyer.post("/verify/", {"qr": f"https://x/verify/qr#{certificate.jws}"}))
    assert "Signature Valid" in page and "Withdrawn" in page and "discontinued" in page


def test_it_replaces_a_revoked_active_key_and_reissues_under_the_new_one(
    certificate, buyer, django_capture_on_commit_callbacks
):
    old_jws, old_pdf = certificate.jws_key, certificate.pdf_key
    with django_capture_on_commit_callbacks(execute=True):
        signing_keys("revoke", old_jws.kid, "--reason", "key compromise")
        signing_keys("revoke", old_pdf.kid, "--reason", "key compromise")
    new_jws = SigningKey.objects.get(purpose="jws", status="active")
    new_pdf = SigningKey.objects.get(purpose="pdf", status="active")
    assert {new_jws.kid, new_pdf.kid}.isdisjoint({old_jws.kid, old_pdf.kid})
    jwks = buyer.get("/.well-known/jwks.json").json()
    assert [k["kid"] for k in jwks["keys"]] == [new_jws.kid]
    token = buyer.get("/.well-known/opencas-status-list.jws").content.decode()
    listed = jwcrypto_verify(token, jwks)["certificates"]
    assert [(e["number"], e.get("signature_key_revoked")) for e in listed] == [
        (certificate.number, True)
    ]

    signing_keys("reissue")
    reissued = Certificate.objects.get(pk=certificate.pk)
    assert (reissued.jws_key, reissued.pdf_key) == (new_jws, new_pdf)
    assert jwcrypto_verify(reissued.jws, jwks)["num"] == certificate.number
    assert "Signature Valid" in upload(buyer, pdf_of(reissued))
