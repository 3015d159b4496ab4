"""The key store: public halves in the database, private halves as files under SIGNING_KEY_DIR.

In the embedded mode a development PKI (P-256 root CA -> issuing certificate) and an
Ed25519 key are made on first use. Production mounts SIGNING_KEY_DIR from a secret store.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from certificates import signing
from certificates.models import SigningKey


@dataclass(frozen=True)
class PdfSigner:
    key: SigningKey
    key_pem: bytes
    cert_pem: bytes
    chain_pems: list[bytes]


def _key_path(kid: str) -> Path:
    return Path(settings.SIGNING_KEY_DIR) / f"{kid}.pem"


def _write_private(kid: str, pem: bytes) -> None:
    path = _key_path(kid)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written to a temporary name and renamed, so a reader never sees half a key.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.replace(tmp, path)


def _read_private(key: SigningKey) -> bytes:
    path = _key_path(key.kid)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RuntimeError(
            f"The private key for {key.kid} is missing from {settings.SIGNING_KEY_DIR}."
        ) from None


def new_kid(purpose: str) -> str:
    return f"{purpose}-{timezone.now():%Y%m%d}-{secrets.token_hex(4)}"


def create_key(*, purpose: str) -> SigningKey:
    """Make a new active key of this purpose, retiring the previous one."""
    kid = new_kid(purpose)
    if purpose == SigningKey.Purpose.JWS:
        private = signing.generate_ed25519_private_pem()
        fields = {"public_jwk": signing.public_jwk(private_pem=private, kid=kid)}
    else:
        pki = signing.generate_dev_pki()
        private = pki.issuing_key_pem
        fields = {
            "certificate_pem": pki.issuing_cert_pem.decode(),
            "root_certificate_pem": pki.root_cert_pem.decode(),
        }
    _write_private(kid, private)
    with transaction.atomic():
        SigningKey.objects.filter(purpose=purpose, status=SigningKey.Status.ACTIVE).update(
            status=SigningKey.Status.RETIRED
        )
        return SigningKey.objects.create(kid=kid, purpose=purpose, **fields)


def _active(purpose: str) -> SigningKey:
    key = SigningKey.objects.filter(purpose=purpose, status=SigningKey.Status.ACTIVE).first()
    if key is not None:
        return key
    try:
        return create_key(purpose=purpose)
    except IntegrityError:
        # Another worker made the first key at the same moment: use theirs.
        return SigningKey.objects.get(purpose=purpose, status=SigningKey.Status.ACTIVE)


def active_jws_key() -> tuple[SigningKey, bytes]:
    key = _active(SigningKey.Purpose.JWS)
    return key, _read_private(key)


def active_pdf_signer() -> PdfSigner:
    key = _active(SigningKey.Purpose.PDF)
    return PdfSigner(
        key=key,
        key_pem=_read_private(key),
        cert_pem=key.certificate_pem.encode(),
        chain_pems=[key.root_certificate_pem.encode()],
    )


def published_jwks() -> dict:
    keys = SigningKey.objects.filter(purpose=SigningKey.Purpose.JWS).exclude(
        status=SigningKey.Status.REVOKED
    )
    return {"keys": [key.public_jwk for key in keys.order_by("created_at")]}


def trusted_pdf_roots() -> list[bytes]:
    keys = SigningKey.objects.filter(purpose=SigningKey.Purpose.PDF).exclude(
        status=SigningKey.Status.REVOKED
    )
    return [key.root_certificate_pem.encode() for key in keys]
