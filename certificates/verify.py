"""Verify an OpenCAS certificate with no OpenCAS server: no database, no network, no Django.

    python -m certificates.verify CERTIFICATE.pdf --roots opencas-pdf-roots.pem \\
        --jwks jwks.json --status-list opencas-status-list.jws
    python -m certificates.verify --qr "https://cas.example.org/verify/qr#eyJ..." \\
        --jwks jwks.json --status-list opencas-status-list.jws [--json]

The files are the scheme's published ones, downloaded beforehand from
  SITE_URL/.well-known/opencas-pdf-roots.pem      (--roots: PDF trust roots, for a PDF)
  SITE_URL/.well-known/jwks.json                  (--jwks: QR and status-list keys)
  SITE_URL/.well-known/opencas-status-list.jws    (--status-list: the signed status list)

Two verdicts, as on the verify page:
  signature  PDF: valid, modified, untrusted (unknown signer), unsigned, not_pdf, unreadable
             QR:  valid, unknown_key, bad_signature, malformed
             both: key_revoked (the status list marks the certificate's signing key revoked)
  status     from the status list: a listed certificate has its status (suspended, withdrawn,
             revoked, expired, superseded) with since when and why; one not listed is
             "active as of" the list's issue time; expired whenever the signed validity
             (the QR code's vun, or the validity printed on a validly signed PDF) has
             passed, with or without a status list; list_expired (the list is past its
             valid_until), list_untrusted (its signature fails or its key is not in the
             JWKS) and unknown (no list given, or no certificate number found) say the
             status is not known.

A revoked key leaves the published JWKS, and the signed status list names every revoked key
(revoked_keys: kid, and for a PDF key its signing certificate's SHA-256): a QR code or a PDF
signed with one reads key_revoked, even after the certificate was re-issued with a new key.

Exit codes:
  0  signature valid and certificate active
  1  signature not valid (any signature verdict other than valid)
  2  signature valid, but the certificate is not active (suspended, withdrawn, revoked,
     expired, superseded)
  3  usage or input error (missing file, unreadable key, roots or status-list file)
  4  signature valid, status unknown (no or expired or untrusted status list)
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

# Pure helpers only: certificates.signing imports no Django (checked by the tests).
from certificates import signing

EXIT_OK, EXIT_SIGNATURE, EXIT_NOT_ACTIVE, EXIT_USAGE, EXIT_STATUS_UNKNOWN = 0, 1, 2, 3, 4
NUMBER_PATTERN = re.compile(r"\b[A-Z]{2,10}-\d{4}-\d{6}\b")
VALID_UNTIL_PATTERN = re.compile(r"Valid until\s+(\d{1,2} [A-Z][a-z]+ \d{4})")
NOT_ACTIVE = {"suspended", "withdrawn", "revoked", "expired", "superseded", "key_revoked"}


class InputError(Exception):
    """A file given on the command line cannot be used (exit 3)."""


@dataclass
class Verdict:
    ok: bool
    code: str
    message: str
    title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    number: str
    signature: Verdict
    status: Verdict
    payload: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        if not self.signature.ok:
            return EXIT_SIGNATURE
        if self.status.ok:
            return EXIT_OK
        if self.status.code in NOT_ACTIVE:
            return EXIT_NOT_ACTIVE
        return EXIT_STATUS_UNKNOWN


# --------------------------------------------------------------------------- inputs


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read the {what} {path}: {exc.strerror or exc}") from exc


def load_jwks(path: str) -> dict[str, Any]:
    try:
        jwks = json.loads(_read(path, "JWKS file"))
    except (ValueError, UnicodeError) as exc:
        raise InputError(f"The JWKS file {path} is not JSON.") from exc
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise InputError(f'The JWKS file {path} has no "keys" list.')
    return jwks


def load_roots(path: str) -> list[bytes]:
    data = _read(path, "PDF trust roots file")
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise InputError(f"The roots file {path} holds no PEM certificate.")
    return [data]


# --------------------------------------------------------------------------- signatures


def pdf_facts(pdf_bytes: bytes) -> tuple[str, date | None]:
    """The certificate number and valid-until date printed on the first page."""
    from pypdf import PdfReader

    try:
        text = PdfReader(io.BytesIO(pdf_bytes)).pages[0].extract_text() or ""
    except Exception:  # noqa: BLE001 - an unreadable PDF simply shows no number
        return "", None
    number = NUMBER_PATTERN.search(text)
    until = VALID_UNTIL_PATTERN.search(text)
    valid_until = None
    if until:
        try:
            valid_until = datetime.strptime(until.group(1), "%d %B %Y").date()  # noqa: DTZ007
        except ValueError:
            valid_until = None
    return (number.group(0) if number else ""), valid_until


def verify_pdf_file(pdf_bytes: bytes, *, roots: list[bytes]) -> tuple[Verdict, str, date | None]:
    try:
        verdict = signing.verify_pdf_signature(pdf_bytes=pdf_bytes, trust_roots_pem=roots)
    except ValueError as exc:
        raise InputError(f"The PDF trust roots cannot be read: {exc}") from exc
    number, valid_until = ("", None)
    if verdict.code not in {"not_pdf", "unreadable"}:
        number, valid_until = pdf_facts(pdf_bytes)
    extra: dict[str, Any] = {"signer": verdict.signer} if verdict.signer else {}
    if verdict.signing_cert_sha256:
        extra["signing_certificate_sha256"] = verdict.signing_cert_sha256
    if verdict.signed_at:
        extra["signed_at"] = verdict.signed_at.isoformat()
    return Verdict(verdict.ok, verdict.code, verdict.message, extra=extra), number, valid_until


def verify_qr_text(text: str, *, jwks: dict[str, Any]) -> tuple[Verdict, dict[str, Any] | None]:
    token = text.strip().split("#", 1)[-1].strip()
    try:
        payload, kid = signing.verify_jws(token=token, jwks=jwks)
    except signing.JwsError as exc:
        message = exc.message
        if exc.code == "unknown_key":
            message += (
                " It is not in the JWKS given: the key was revoked, or retired with every "
                "certificate it signed, or the code is forged."
            )
        return Verdict(False, exc.code, message, extra={"kid": _token_kid(token)}), None
    return Verdict(True, "valid", f"The QR code's signed payload is intact (key {kid})."), payload


def _token_kid(token: str) -> str:
    """The key id a compact JWS names in its header, for messages ("" if unreadable)."""
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))
    except (ValueError, UnicodeError):
        return ""
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else ""


def revoked_keys(*, status_list: bytes | None, jwks: dict[str, Any] | None) -> list[dict]:
    """The revoked keys a correctly signed status list names. A revocation never lapses, so
    a list past its valid_until still proves one; an untrusted list proves nothing."""
    if status_list is None or jwks is None:
        return []
    try:
        document, _kid = signing.verify_jws(token=status_list.decode("ascii", "replace"), jwks=jwks)
    except signing.JwsError:
        return []
    listed = document.get("revoked_keys") or []
    return [entry for entry in listed if isinstance(entry, dict)]


def _revoked_signature(signature: Verdict, revoked: list[dict]) -> Verdict | None:
    """key_revoked when the signature was made with a key the status list names revoked."""
    digest = signature.extra.get("signing_certificate_sha256")
    kid = signature.extra.get("kid")
    for entry in revoked:
        if digest and entry.get("certificate_sha256") == digest and signature.ok:
            return Verdict(
                False,
                "key_revoked",
                f"signature key revoked: this PDF is intact but its signing key {entry.get('kid')}"
                f" was revoked on {_day(entry.get('revoked_at'))}, so it proves nothing; ask "
                "the vendor for the re-issued copy.",
                extra=signature.extra,
            )
        if kid and entry.get("kid") == kid and signature.code == "unknown_key":
            return Verdict(
                False,
                "key_revoked",
                f"signature key revoked: the key {kid} that signed this QR code was revoked on "
                f"{_day(entry.get('revoked_at'))}, so it proves nothing; check the certificate "
                "number instead.",
                extra=signature.extra,
            )
    return None


# --------------------------------------------------------------------------- status list


def _parse_time(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _day(value: Any) -> str:
    parsed = _parse_time(value)
    return f"{parsed:%Y-%m-%d}" if parsed else "an unknown date"


def status_verdict(
    *,
    number: str,
    status_list: bytes | None,
    jwks: dict[str, Any] | None,
    valid_until: date | None,
    now: datetime,
) -> Verdict:
    if not number:
        return Verdict(False, "unknown", "no certificate number could be read.", "Unknown")
    # A signed validity that has passed proves the certificate expired, whatever the status
    # list says or whether there is one: it can only be worse (suspended, revoked, ...).
    expired = None
    if valid_until is not None and valid_until < now.date():
        expired = Verdict(
            False,
            "expired",
            f"it was valid until {valid_until:%Y-%m-%d}.",
            "Expired",
            {"valid_until": valid_until.isoformat()},
        )
    if status_list is None:
        return expired or Verdict(
            False,
            "unknown",
            "no status list given (--status-list): the signature is checked, the current "
            "status is not known.",
            "Status unknown",
        )
    try:
        document, _kid = signing.verify_jws(
            token=status_list.decode("ascii", "replace"), jwks=jwks or {"keys": []}
        )
    except signing.JwsError as exc:
        return expired or Verdict(
            False,
            "list_untrusted",
            f"the status list cannot be trusted: {exc.message}",
            "Status unknown",
        )
    list_until = _parse_time(document.get("valid_until"))
    if list_until is None or list_until < now:
        return expired or Verdict(
            False,
            "list_expired",
            f"the status list was valid until {document.get('valid_until')}: download a fresh "
            "one from the scheme's site.",
            "Status unknown",
        )
    entries = document.get("certificates") or []
    entry = next((e for e in entries if isinstance(e, dict) and e.get("number") == number), None)
    if entry is not None:
        status = str(entry.get("status", ""))
        reason = str(entry.get("reason") or "").strip()
        details = {
            "since": entry.get("since"),
            "reason": reason,
            "superseded_by": entry.get("superseded_by", ""),
        }
        if entry.get("signature_key_revoked"):
            return Verdict(
                False,
                "key_revoked",
                f"{status} since {_day(entry.get('since'))}, but the key that signed this copy "
                "was revoked: a re-issued copy replaces it.",
                "Signature key revoked",
                details,
            )
        if status != "active":
            message = f"since {_day(entry.get('since'))}"
            if entry.get("superseded_by"):
                message += f"; replaced by {entry['superseded_by']}"
            message += f": {reason}" if reason else "."
            return Verdict(False, status, message, status.capitalize(), details)
    if expired is not None:
        return expired
    return Verdict(
        True,
        "active",
        f"active as of {document.get('issued_at')} (the status list's time; it is valid until "
        f"{document.get('valid_until')}).",
        "Active",
    )


# --------------------------------------------------------------------------- the command


def verify(args: argparse.Namespace, *, now: datetime | None = None) -> Result:
    now = now or datetime.now(tz=UTC)
    jwks = load_jwks(args.jwks) if args.jwks else None
    status_list = _read(args.status_list, "status list") if args.status_list else None
    payload = None
    if args.qr is not None:
        if jwks is None:
            raise InputError("Checking a QR code needs the published keys: --jwks FILE.")
        signature, payload = verify_qr_text(args.qr, jwks=jwks)
        number = str(payload.get("num", "")) if payload else ""
        valid_until = None
        if payload and payload.get("vun"):
            try:
                valid_until = date.fromisoformat(str(payload["vun"]))
            except ValueError:
                valid_until = None
    else:
        if not args.roots:
            raise InputError(
                "Checking a PDF needs the scheme's PDF trust roots: --roots FILE "
                "(SITE_URL/.well-known/opencas-pdf-roots.pem)."
            )
        roots = load_roots(args.roots)
        signature, number, valid_until = verify_pdf_file(_read(args.pdf, "PDF file"), roots=roots)
    if status_list is not None and jwks is None:
        raise InputError("Checking the status list needs the published keys: --jwks FILE.")
    signature = (
        _revoked_signature(signature, revoked_keys(status_list=status_list, jwks=jwks)) or signature
    )
    status = status_verdict(
        number=number if signature.ok else "",
        status_list=status_list,
        jwks=jwks,
        valid_until=valid_until,
        now=now,
    )
    if not signature.ok:
        status = Verdict(
            False,
            "unknown",
            "no status: the signature could not be trusted"
            + (f" (the document names {number})." if number else "."),
            "Unknown",
        )
    elif status.code == "key_revoked":
        signature = Verdict(
            False,
            "key_revoked",
            "signature key revoked: re-issue pending. The signature is intact but its key was "
            "revoked, so it proves nothing; ask the vendor for the re-issued copy.",
        )
    return Result(number=number, signature=signature, status=status, payload=payload)


def parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    usage_end = doc.index("Two verdicts")
    exit_codes = doc[doc.index("Exit codes:") :]
    cli = argparse.ArgumentParser(
        prog="python -m certificates.verify",
        description="Verify an OpenCAS certificate PDF or QR code offline, against the "
        "scheme's published keys, PDF trust roots and signed status list. "
        "No server, database or network is used.",
        epilog=doc[:usage_end].split("\n", 1)[1] + "\n" + exit_codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_argument("pdf", nargs="?", metavar="FILE.pdf", help="the certificate PDF")
    cli.add_argument("--qr", metavar="TEXT", help="a QR code's text (its URL or compact JWS)")
    cli.add_argument("--jwks", metavar="FILE", help="the published JWKS (jwks.json)")
    cli.add_argument(
        "--status-list", metavar="FILE", help="the signed status list (opencas-status-list.jws)"
    )
    cli.add_argument("--roots", metavar="FILE", help="the PDF trust roots (opencas-pdf-roots.pem)")
    cli.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    return cli


def _text(result: Result) -> str:
    sig, status = result.signature, result.status
    lines = [f"Certificate {result.number or '(number unknown)'}"]
    lines.append(f"Signature: {'VALID' if sig.ok else 'NOT VALID'} ({sig.code}): {sig.message}")
    title = status.title or status.code
    lines.append(f"Status:    {title.upper()} ({status.code}): {status.message}")
    if result.payload:
        fields = ", ".join(f"{k}={v}" for k, v in sorted(result.payload.items()))
        lines.append(f"Signed fields: {fields}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    cli = parser()
    try:
        args = cli.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits 2 on a usage error; ours is 3 (2 means "not active").
        return EXIT_USAGE if exit_.code else EXIT_OK
    if (args.pdf is None) == (args.qr is None):
        cli.print_usage(sys.stderr)
        print("error: give either a PDF file or --qr TEXT", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = verify(args)
    except InputError as exc:
        if args.json:
            print(json.dumps({"error": str(exc), "exit_code": EXIT_USAGE}))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(
            json.dumps(
                {
                    "number": result.number,
                    "signature": asdict(result.signature),
                    "status": asdict(result.status),
                    "payload": result.payload,
                    "exit_code": result.exit_code,
                },
                indent=2,
                default=str,
            )
        )
    else:
        print(_text(result))
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
