"""Pure signing helpers: dev PKI, Ed25519 JWS for QR payloads, PAdES PDF signatures.

No Django and no database access: data in, bytes/dataclasses out.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

JWS_ALG = "Ed25519"


# --------------------------------------------------------------------------- dev PKI


@dataclass(frozen=True)
class DevPKI:
    root_cert_pem: bytes
    issuing_cert_pem: bytes
    issuing_key_pem: bytes


def _name(*, organisation: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(**flags: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{name: flags.get(name, False) for name in names})


def _pem_private(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate_root_ca(*, organisation: str, common_name: str, valid_days: int = 7300) -> tuple:
    """A self-signed ECDSA P-256 root CA: (certificate PEM, clear private key PEM)."""
    # Back-date a little so freshly issued certs are valid on hosts with slightly skewed clocks.
    not_before = datetime.now(tz=UTC) - timedelta(hours=1)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(organisation=organisation, common_name=common_name)
    root_cert = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    return root_cert.public_bytes(serialization.Encoding.PEM), _pem_private(root_key)


def check_root_ca(*, cert_pem: bytes, key_pem: bytes) -> None:
    """Refuse (ValueError) a root that is not a CA certificate matching its private key."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise ValueError("The CA certificate is not a PEM X.509 certificate.") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("The CA key is not an unencrypted PEM private key.") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("The CA key must be an ECDSA P-256 key.")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise ValueError("The CA key does not belong to the CA certificate.")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ValueError("The CA certificate is not a certificate authority (BasicConstraints).")


def issue_signing_certificate(
    *, root_cert_pem: bytes, root_key_pem: bytes, organisation: str, valid_days: int = 3650
) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 document-signing key and its certificate issued by the root:
    (certificate PEM, clear private key PEM)."""
    root_cert = x509.load_pem_x509_certificate(root_cert_pem)
    root_key = serialization.load_pem_private_key(root_key_pem, password=None)
    not_before = datetime.now(tz=UTC) - timedelta(hours=1)
    not_after = min(not_before + timedelta(days=valid_days), root_cert.not_valid_after_utc)
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    issuing_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(organisation=organisation, common_name="OpenCAS Certificate Signing"))
        .issuer_name(root_cert.subject)
        .public_key(issuing_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(issuing_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    return issuing_cert.public_bytes(serialization.Encoding.PEM), _pem_private(issuing_key)


def generate_dev_pki(
    *, organisation: str = "OpenCAS Development", valid_days: int = 3650
) -> DevPKI:
    """A throw-away root and signing certificate (tests and benchmarks only; the scheme's
    lasting root lives in the key store, see certificates.keys)."""
    root_cert_pem, root_key_pem = generate_root_ca(
        organisation=organisation, common_name=f"{organisation} Root CA", valid_days=valid_days
    )
    cert_pem, key_pem = issue_signing_certificate(
        root_cert_pem=root_cert_pem,
        root_key_pem=root_key_pem,
        organisation=organisation,
        valid_days=valid_days,
    )
    return DevPKI(root_cert_pem=root_cert_pem, issuing_cert_pem=cert_pem, issuing_key_pem=key_pem)


# --------------------------------------------------------------------------- JWS (QR payload)


class JwsError(Exception):
    """Verification failure; ``code`` is "malformed", "unknown_key" or "bad_signature"."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def generate_ed25519_private_pem() -> bytes:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_jwk(*, private_pem: bytes, kid: str) -> dict[str, Any]:
    key = OKPKey.import_key(private_pem)
    return {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": JWS_ALG}


def sign_jws(*, payload: dict[str, Any], private_pem: bytes, kid: str) -> str:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return jws.serialize_compact(
        {"alg": JWS_ALG, "kid": kid},
        body.encode(),
        OKPKey.import_key(private_pem),
        algorithms=[JWS_ALG],
    )


def verify_jws(*, token: str, jwks: dict[str, Any]) -> tuple[dict[str, Any], str]:
    try:
        obj = jws.extract_compact(token.strip().encode())
        header = obj.headers()
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise JwsError("malformed", "The code does not contain a readable signed payload.") from exc
    kid = header.get("kid")
    if header.get("alg") != JWS_ALG or not isinstance(kid, str):
        raise JwsError("malformed", "The signed payload does not use the expected signature type.")

    candidates = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
    if not candidates:
        raise JwsError("unknown_key", f"The payload was signed with an unknown key ({kid}).")
    try:
        key = OKPKey.import_key({k: v for k, v in candidates[0].items() if k != "d"})
        ok = jws.validate_compact(obj, key, algorithms=[JWS_ALG])
    except (JoseError, ValueError, TypeError) as exc:
        raise JwsError("bad_signature", "The signature could not be checked with the key.") from exc
    if not ok:
        raise JwsError("bad_signature", "The signature does not match the payload.")

    try:
        payload = json.loads(obj.payload)
    except ValueError as exc:
        raise JwsError("malformed", "The signed payload is not valid JSON.") from exc
    if not isinstance(payload, dict):
        raise JwsError("malformed", "The signed payload is not a JSON object.")
    return payload, kid


# --------------------------------------------------------------------------- PAdES PDF


def sign_pdf(
    *,
    pdf_bytes: bytes,
    key_pem: bytes,
    cert_pem: bytes,
    chain_pems: list[bytes],
    field_name: str = "OpenCASSignature",
    reason: str = "IHE conformity assessment certificate issued by OpenCAS",
    location: str = "OpenCAS",
    timestamp_url: str = "",
    timestamper: Any = None,
) -> bytes:
    """PAdES B-B; B-T (a signature time-stamp from an RFC 3161 authority) when a
    time-stamp URL or a timestamper object is given."""
    signing_cert = next(load_certs_from_pemder_data(cert_pem))
    chain = [c for pem in chain_pems for c in load_certs_from_pemder_data(pem)]
    signer = signers.SimpleSigner(
        signing_cert=signing_cert,
        signing_key=load_private_key_from_pemder_data(key_pem, passphrase=None),
        cert_registry=SimpleCertificateStore.from_certs([signing_cert, *chain]),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
    )
    if timestamper is None and timestamp_url:
        timestamper = HTTPTimeStamper(timestamp_url, timeout=10)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes), strict=False)
    out = signers.sign_pdf(writer, meta, signer=signer, timestamper=timestamper)
    return out.getvalue()


@dataclass(frozen=True)
class PdfSignatureVerdict:
    ok: bool
    code: str
    message: str
    signer: str = ""
    signed_at: datetime | None = None
    intact: bool = False
    trusted: bool = False
    covers_whole_file: bool = False
    # PAdES B-T: the time an independent time-stamp authority vouches for.
    timestamped_at: datetime | None = None
    # SHA-256 of the signing certificate (DER), so the caller can spot a revoked key.
    signing_cert_sha256: str = ""


_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")


def _raw_digest_mismatch(pdf_bytes: bytes) -> bool:
    """Check the CMS message digest against the /ByteRange without parsing the PDF structure.

    Used when a tampered byte breaks the PDF structure itself, so that tampering is still
    reported as a modification rather than as an unreadable file.
    """
    for match in _BYTE_RANGE.finditer(pdf_bytes):
        a, b, c, d = (int(x) for x in match.groups())
        if a != 0 or not b < c <= c + d <= len(pdf_bytes):
            continue
        try:
            # The gap between the two ranges is exactly the /Contents hex string "<...>".
            der = bytes.fromhex(pdf_bytes[b:c].strip(b"<> \r\n").decode())
            signed_data = cms.ContentInfo.load(der.rstrip(b"\0"))["content"]
            signer_info = signed_data["signer_infos"][0]
            algo = signer_info["digest_algorithm"]["algorithm"].native
            expected = next(
                attr["values"][0].native
                for attr in signer_info["signed_attrs"]
                if attr["type"].native == "message_digest"
            )
            actual = hashlib.new(algo, pdf_bytes[:b] + pdf_bytes[c : c + d]).digest()
        except Exception:  # noqa: S112 - any unparsable candidate is simply not evidence
            continue
        if actual != expected:
            return True
    return False


def _signer_name(status: Any) -> str:
    try:
        subject = status.signing_cert.subject
        return str(subject.native.get("common_name") or subject.human_friendly)
    except Exception:
        return "an unknown signer"


def _cert_digest(status: Any) -> str:
    try:
        return hashlib.sha256(status.signing_cert.dump()).hexdigest()
    except Exception:
        return ""


def _timestamp_time(status: Any) -> datetime | None:
    validity = getattr(status, "timestamp_validity", None)
    return getattr(validity, "timestamp", None) if validity is not None else None


def verify_pdf_signature(
    *, pdf_bytes: bytes, trust_roots_pem: list[bytes], tsa_roots_pem: list[bytes] | None = None
) -> PdfSignatureVerdict:
    if not isinstance(pdf_bytes, bytes | bytearray) or b"%PDF-" not in bytes(pdf_bytes[:1024]):
        return PdfSignatureVerdict(ok=False, code="not_pdf", message="This file is not a PDF.")
    pdf_bytes = bytes(pdf_bytes)

    def modified(message: str, **extra: Any) -> PdfSignatureVerdict:
        return PdfSignatureVerdict(ok=False, code="modified", message=message, **extra)

    tampered = "The document was changed after it was signed; the signature no longer matches."
    try:
        reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=False)
        signatures = reader.embedded_signatures
    except Exception:
        if _raw_digest_mismatch(pdf_bytes):
            return modified(tampered)
        return PdfSignatureVerdict(
            ok=False, code="unreadable", message="The PDF is damaged and cannot be read."
        )
    if not signatures:
        return PdfSignatureVerdict(
            ok=False, code="unsigned", message="The PDF does not carry a digital signature."
        )

    # Trust roots are configuration, not user input: a broken root should fail loudly.
    roots = [c for pem in trust_roots_pem for c in load_certs_from_pemder_data(pem)]
    # Offline by design: no fetching, and missing revocation info must not fail validation.
    context = ValidationContext(
        trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail"
    )
    # Time-stamp authorities are trusted for time-stamps only, never as document signers.
    tsa_roots = [c for pem in tsa_roots_pem or [] for c in load_certs_from_pemder_data(pem)]
    ts_context = ValidationContext(
        trust_roots=tsa_roots, allow_fetching=False, revocation_mode="soft-fail"
    )
    try:
        # Only the most recent signature can cover the whole file.
        status = validate_pdf_signature(signatures[-1], context, ts_validation_context=ts_context)
    except Exception:
        if _raw_digest_mismatch(pdf_bytes):
            return modified(tampered)
        return PdfSignatureVerdict(
            ok=False, code="unreadable", message="The signature in this PDF cannot be read."
        )

    signer = _signer_name(status)
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE and len(signatures) == 1
    facts: dict[str, Any] = {
        "signer": signer,
        "signed_at": status.signer_reported_dt,
        "intact": bool(status.intact),
        "trusted": bool(status.trusted),
        "covers_whole_file": whole,
        "timestamped_at": _timestamp_time(status),
        "signing_cert_sha256": _cert_digest(status),
    }
    if not (status.intact and status.valid):
        return modified(tampered, **facts)
    if not whole:
        return modified(
            "The document was extended after it was signed; the signed version has been altered.",
            **facts,
        )
    if not status.trusted:
        return PdfSignatureVerdict(
            ok=False,
            code="untrusted",
            message=f"The signature is intact but was made by {signer}, "
            "who is not backed by a trusted certificate authority.",
            **facts,
        )
    timestamp = status.timestamp_validity
    if timestamp is not None and not (timestamp.intact and timestamp.valid):
        return modified("The signature's time-stamp does not match the signature.", **facts)
    if timestamp is not None and not timestamp.trusted:
        # Intact, but from a time-stamp authority this verifier does not know: the signature
        # stands, the time it claims is not vouched for.
        facts["timestamped_at"] = None
    if not (status.seed_value_ok and (status.docmdp_ok or status.modification_level is None)):
        return modified("The document was changed in a way its signature does not allow.", **facts)
    return PdfSignatureVerdict(
        ok=True,
        code="valid",
        message=f"The document is intact and was signed by {signer}.",
        **facts,
    )
