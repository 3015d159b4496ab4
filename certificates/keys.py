"""The key store: public halves in the database, private halves encrypted under SIGNING_KEY_DIR.

Every private key file is a PKCS#8 PEM encrypted (PBES2, AES-256) under a passphrase taken
from OPENCAS_KEY_PASSPHRASE or the file named by OPENCAS_KEY_PASSPHRASE_FILE. In the embedded
mode, with neither set, a development passphrase is generated once next to the key folder
(var/signing-key-passphrase). No private key is ever stored in clear, on disk or in the
database; decrypted keys live only in this process's memory.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from cas.audit import audit_record
from cas.errors import ActionRefused
from certificates import signing
from certificates.models import Certificate, SigningKey


class KeyStoreError(RuntimeError):
    """The key store cannot be used as configured (missing passphrase, missing key file)."""


@dataclass(frozen=True)
class PdfSigner:
    key: SigningKey
    key_pem: bytes
    cert_pem: bytes
    chain_pems: list[bytes]


# --------------------------------------------------------------------------- passphrase


def dev_passphrase_path() -> Path:
    return Path(settings.SIGNING_KEY_DIR).parent / "signing-key-passphrase"


def _write_exclusive(path: Path, data: bytes) -> bool:
    """Write a new file atomically; False if another process created it first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        try:
            os.link(tmp, path)  # fails if the file exists: never overwrites a passphrase
        except FileExistsError:
            return False
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def passphrase() -> bytes:
    value = settings.SIGNING_KEY_PASSPHRASE
    if value:
        return value.encode()
    if settings.SIGNING_KEY_PASSPHRASE_FILE:
        path = Path(settings.SIGNING_KEY_PASSPHRASE_FILE)
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise KeyStoreError(f"Cannot read the key passphrase file {path}: {exc}") from exc
        if not value:
            raise KeyStoreError(f"The key passphrase file {path} is empty.")
        return value.encode()
    if not settings.SIGNING_KEY_PASSPHRASE_GENERATE:
        raise KeyStoreError(
            "No passphrase for the signing keys: set OPENCAS_KEY_PASSPHRASE or "
            "OPENCAS_KEY_PASSPHRASE_FILE."
        )
    path = dev_passphrase_path()
    if not path.exists():
        _write_exclusive(path, secrets.token_urlsafe(32).encode())
    return path.read_text().strip().encode()


# --------------------------------------------------------------------------- private halves


def _key_path(kid: str) -> Path:
    return Path(settings.SIGNING_KEY_DIR) / f"{kid}.pem"


def _encrypt(pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(pem, password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase()),
    )


def _write_private(kid: str, pem: bytes) -> None:
    path = _key_path(kid)
    path.parent.mkdir(parents=True, exist_ok=True)
    encrypted = _encrypt(pem)
    # Written to a temporary name and renamed, so a reader never sees half a key.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(encrypted)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


# Decrypting costs a key derivation; signers reuse the clear key for the life of the process.
_decrypted: dict[tuple[str, str, int, bytes], bytes] = {}


def _read_private(key: SigningKey) -> bytes:
    path = _key_path(key.kid)
    try:
        stat = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyStoreError(
            f"The private key for {key.kid} is missing from {settings.SIGNING_KEY_DIR}."
        ) from None
    secret = passphrase()
    cache_key = (str(path), key.kid, stat.st_mtime_ns, hashlib.sha256(secret).digest())
    if cache_key in _decrypted:
        return _decrypted[cache_key]
    if b"ENCRYPTED" not in data.split(b"\n", 1)[0]:
        # A clear key left by an older OpenCAS: encrypt it in place before using it.
        _write_private(key.kid, data)
        return _read_private(key)
    try:
        private = serialization.load_pem_private_key(data, password=secret)
    except (ValueError, TypeError) as exc:
        raise KeyStoreError(
            f"The private key for {key.kid} cannot be decrypted with the configured passphrase."
        ) from exc
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _decrypted[cache_key] = pem
    return pem


# --------------------------------------------------------------------------- key lifecycle


def new_kid(purpose: str) -> str:
    return f"{purpose}-{timezone.now():%Y%m%d}-{secrets.token_hex(4)}"


def embedded_mode() -> bool:
    """Embedded (development) mode generates its own passphrase; production never does."""
    return bool(settings.SIGNING_KEY_PASSPHRASE_GENERATE)


def root_common_name() -> str:
    development = " Development" if embedded_mode() else ""
    return f"{settings.SCHEME_NAME}{development} Root CA"


def _save_new(
    *,
    kid: str,
    purpose: str,
    private: bytes,
    fields: dict,
    retire_active: bool,
    by,
    action: str,
    reason: str,
) -> SigningKey:
    _write_private(kid, private)
    try:
        with transaction.atomic():
            retired: list[str] = []
            if retire_active:
                current = SigningKey.objects.select_for_update().filter(
                    purpose=purpose, status=SigningKey.Status.ACTIVE
                )
                retired = list(current.values_list("kid", flat=True))
                current.update(status=SigningKey.Status.RETIRED, retired_at=timezone.now())
            key = SigningKey.objects.create(kid=kid, purpose=purpose, **fields)
            if retired and not reason:
                reason = f"replaces the retired key {', '.join(retired)}"
            audit_record(obj=key, action=action, by=by, to_state=key.status, reason=reason)
            return key
    except BaseException:
        # The row was not stored: its private half belongs to nobody.
        _key_path(kid).unlink(missing_ok=True)
        raise


def scheme_root(*, by=None) -> tuple[SigningKey, bytes]:
    """The scheme's lasting root CA, made once (audited) the first time a PDF key needs it.

    Every PDF signing certificate is issued under it, so the published roots stay the same
    across rotations and revocations of the PDF keys."""
    root = SigningKey.objects.filter(
        purpose=SigningKey.Purpose.ROOT, status=SigningKey.Status.ACTIVE
    ).first()
    if root is None:
        cert_pem, key_pem = signing.generate_root_ca(
            organisation=settings.SCHEME_NAME, common_name=root_common_name()
        )
        try:
            root = import_root(cert_pem=cert_pem, key_pem=key_pem, by=by, imported=False)
        except IntegrityError:
            # Another worker made the root at the same moment: use theirs.
            root = SigningKey.objects.get(
                purpose=SigningKey.Purpose.ROOT, status=SigningKey.Status.ACTIVE
            )
    return root, _read_private(root)


def import_root(*, cert_pem: bytes, key_pem: bytes, by=None, imported: bool = True) -> SigningKey:
    """Store a root CA (an operator's own, or a new one) as the scheme root; refuses if one
    exists already, so the published roots never change under the verifiers' feet."""
    try:
        signing.check_root_ca(cert_pem=cert_pem, key_pem=key_pem)
    except ValueError as exc:
        raise ActionRefused(str(exc)) from exc
    if SigningKey.objects.filter(
        purpose=SigningKey.Purpose.ROOT, status=SigningKey.Status.ACTIVE
    ).exists():
        raise ActionRefused("A scheme root CA exists already: it is kept for good.")
    kid = new_kid(SigningKey.Purpose.ROOT)
    text = cert_pem.decode()
    return _save_new(
        kid=kid,
        purpose=SigningKey.Purpose.ROOT,
        private=key_pem,
        fields={"certificate_pem": text, "root_certificate_pem": text},
        retire_active=False,
        by=by,
        action="create",
        reason="scheme root CA imported by the operator" if imported else "scheme root CA",
    )


def create_key(
    *, purpose: str, retire_active: bool = True, by=None, action: str = "create", reason: str = ""
) -> SigningKey:
    """Make a new active key of this purpose (audited); the previous active one is retired
    and named in the audit entry.

    With retire_active=False an existing active key makes this fail (IntegrityError), which
    is how two workers making the first key at the same moment end up with one.
    """
    if purpose not in (SigningKey.Purpose.JWS, SigningKey.Purpose.PDF):
        raise ActionRefused(f"Unknown key purpose {purpose!r}: use jws or pdf.")
    kid = new_kid(purpose)
    if purpose == SigningKey.Purpose.JWS:
        private = signing.generate_ed25519_private_pem()
        fields = {"public_jwk": signing.public_jwk(private_pem=private, kid=kid)}
    else:
        root, root_key = scheme_root(by=by)
        cert_pem, private = signing.issue_signing_certificate(
            root_cert_pem=root.certificate_pem.encode(),
            root_key_pem=root_key,
            organisation=settings.SCHEME_NAME,
        )
        fields = {
            "certificate_pem": cert_pem.decode(),
            "root_certificate_pem": root.certificate_pem,
        }
    return _save_new(
        kid=kid,
        purpose=purpose,
        private=private,
        fields=fields,
        retire_active=retire_active,
        by=by,
        action=action,
        reason=reason,
    )


def _active(purpose: str) -> SigningKey:
    key = SigningKey.objects.filter(purpose=purpose, status=SigningKey.Status.ACTIVE).first()
    if key is not None:
        return key
    if not embedded_mode():
        # Production: keys are made by an operator through the audited command, never as a
        # side effect of issuing or of a page view.
        raise KeyStoreError(
            f"No active {purpose} signing key: run `python manage.py signing_keys create` "
            "(with the key passphrase configured) before issuing certificates."
        )
    try:
        with transaction.atomic():
            return create_key(
                purpose=purpose,
                retire_active=False,
                reason="first key, made on first use (embedded mode)",
            )
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
    """The JWKS for offline verifiers: the active key and every unrevoked key that signed a
    live (active or suspended) certificate. Keys whose certificates are all withdrawn,
    revoked, expired or superseded drop out: nothing valid can be verified with them."""
    live_signers = Certificate.objects.live().values("jws_key")
    keys = (
        SigningKey.objects.filter(purpose=SigningKey.Purpose.JWS)
        .exclude(status=SigningKey.Status.REVOKED)
        .filter(Q(status=SigningKey.Status.ACTIVE) | Q(pk__in=live_signers))
    )
    return {"keys": [key.public_jwk for key in keys.order_by("created_at")]}


def verification_jwks() -> dict:
    """Every unrevoked JWS key: our own verify page still names the status of a withdrawn
    or expired certificate whose key has left the published set."""
    keys = SigningKey.objects.filter(purpose=SigningKey.Purpose.JWS).exclude(
        status=SigningKey.Status.REVOKED
    )
    return {"keys": [key.public_jwk for key in keys.order_by("created_at")]}


def trusted_pdf_roots() -> list[bytes]:
    """The scheme root first, then any older root still behind an unrevoked PDF key (keys
    made before the lasting root existed), each once."""
    roots = SigningKey.objects.filter(purpose=SigningKey.Purpose.ROOT).exclude(
        status=SigningKey.Status.REVOKED
    )
    pdf = SigningKey.objects.filter(purpose=SigningKey.Purpose.PDF).exclude(
        status=SigningKey.Status.REVOKED
    )
    pems: list[str] = [key.certificate_pem for key in roots.order_by("created_at")]
    pems += [key.root_certificate_pem for key in pdf.order_by("created_at")]
    return [pem.encode() for pem in dict.fromkeys(pems) if pem]


def pdf_key_for_certificate(cert_sha256: str) -> SigningKey | None:
    """The PDF key whose signing certificate (DER) has this SHA-256, if it is ours."""
    for key in SigningKey.objects.filter(purpose=SigningKey.Purpose.PDF):
        der = x509.load_pem_x509_certificate(key.certificate_pem.encode()).public_bytes(
            serialization.Encoding.DER
        )
        if hashlib.sha256(der).hexdigest() == cert_sha256:
            return key
    return None


def trusted_tsa_roots() -> list[bytes]:
    """Roots of the time-stamp authorities whose time-stamps we vouch for (a PEM bundle)."""
    path = settings.CERTIFICATE_TSA_ROOTS_FILE
    if not path:
        return []
    try:
        return [Path(path).read_bytes()]
    except OSError as exc:
        raise KeyStoreError(f"Cannot read the time-stamp authority roots {path}: {exc}") from exc
