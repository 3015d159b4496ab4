from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import logging
import os
import re
import signal
import tempfile
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from pypdf import PdfReader

from cas.audit import audit_record
from cas.errors import ActionRefused, Conflict
from cas.models import Application
from certificates import keys, signing
from certificates.models import Certificate, NumberSequence, SigningKey, StatusList
from certificates.pdf import CertificateContent, ScopeLine, qr_text_for, render_certificate_pdf
from certificates.subscriptions import subscribers_notify

log = logging.getLogger("opencas.certificates")
NUMBER_PATTERN = re.compile(r"\b[A-Z]{2,10}-\d{4}-\d{6}\b")


def certificate_number_allocate(*, year: int) -> str:
    """The next number of the year; the sequence row is locked, so it is never reused."""
    prefix = settings.CERTIFICATE_NUMBER_PREFIX
    with transaction.atomic():
        try:
            with transaction.atomic():
                NumberSequence.objects.get_or_create(prefix=prefix, year=year)
        except IntegrityError:
            pass  # created concurrently by another worker; lock it below
        sequence = NumberSequence.objects.select_for_update().get(prefix=prefix, year=year)
        sequence.last += 1
        sequence.save(update_fields=["last"])
    return f"{prefix}-{year}-{sequence.last:06d}"


def certificate_content(*, application: Application) -> dict:
    from labs.services import accreditation_in_force

    version = application.product_version
    vendor = application.vendor
    lab = application.lab
    decided_on = (
        timezone.localtime(application.decided_at).date()
        if application.decided_at
        else timezone.localdate()
    )
    # Cite only an accreditation in force on the decision date that covers the granted scope.
    accreditation = (
        accreditation_in_force(
            lab=lab,
            day=decided_on,
            profiles={
                c.aipo.profile
                for c in application.claims.filter(granted=True).select_related("aipo__profile")
            },
        )
        if lab
        else None
    )
    scope = [
        {
            "profile_keyword": claim.aipo.profile.keyword,
            "profile_name": claim.aipo.profile.name,
            "actor_keyword": claim.aipo.actor.keyword,
            "actor_name": claim.aipo.actor.name,
            "option_keyword": claim.aipo.option.keyword,
            "option_name": claim.aipo.option.name,
            "tf_revision": claim.aipo.profile.tf_revision,
        }
        for claim in application.claims.filter(granted=True).select_related(
            "aipo__profile", "aipo__actor", "aipo__option"
        )
    ]
    return {
        "vendor_name": vendor.name,
        "vendor_address": vendor.address,
        "product_name": version.product.name,
        "product_version": version.version,
        "scope": scope,
        "lab_name": lab.name if lab else "",
        "lab_accreditation_number": accreditation.number if accreditation else "",
        "accreditation_body": accreditation.body if accreditation else "",
        "scheme_name": settings.SCHEME_NAME,
        "scheme_version": settings.SCHEME_VERSION,
    }


def qr_payload(certificate: Certificate) -> dict:
    """The essential fields signed into the QR code: small enough to scan from paper."""
    scope = certificate.content["scope"]
    scope_text = "\n".join(
        f"{s['profile_keyword']}|{s['actor_keyword']}|{s['option_keyword']}" for s in scope
    )
    return {
        "num": certificate.number,
        "ven": certificate.content["vendor_name"],
        "prd": certificate.content["product_name"],
        "ver": certificate.content["product_version"],
        "vfr": certificate.valid_from.isoformat(),
        "vun": certificate.valid_until.isoformat(),
        "aipos": len(scope),
        "scope": hashlib.sha256(scope_text.encode()).hexdigest()[:32],
    }


def verify_url(number: str) -> str:
    return f"{settings.SITE_URL}/verify/{number}"


def render_content(
    certificate: Certificate, *, qr_text: str, key_id: str, status: str
) -> CertificateContent:
    content = certificate.content
    return CertificateContent(
        number=certificate.number,
        vendor_name=content["vendor_name"],
        vendor_address=content["vendor_address"],
        product_name=content["product_name"],
        product_version=content["product_version"],
        scope=tuple(ScopeLine(**line) for line in content["scope"]),
        lab_name=content["lab_name"],
        lab_accreditation_number=content["lab_accreditation_number"],
        accreditation_body=content["accreditation_body"],
        scheme_name=content["scheme_name"],
        scheme_version=content["scheme_version"],
        decision_date=certificate.decision_date,
        valid_from=certificate.valid_from,
        valid_until=certificate.valid_until,
        # The PDF is frozen; the status it states is the one at issue, the live one is online.
        status=status,
        verify_url=verify_url(certificate.number),
        qr_text=qr_text,
        key_id=key_id,
        jwks_url=f"{settings.SITE_URL}/.well-known/jwks.json",
    )


def certificates_finish_pending() -> list[str]:
    """Issue every granted case still lacking an active certificate (after a failed task)."""
    pending = Application.objects.filter(state=Application.State.CERTIFIED).exclude(
        certificates__status__in=[s for s in Certificate.Status.values if s != "issuing"]
    )
    done = []
    for pk in pending.order_by("pk").values_list("pk", flat=True):
        try:
            done.append(certificate_issue(application_id=pk).number)
        except Exception:
            # One broken case (a bad key file, a time-stamp authority down) must not keep the
            # others waiting: log it, go on; the next run tries it again.
            log.exception("issuing the certificate of application %s failed", pk)
    return done


def store_pdf_atomically(*, name: str, data: bytes) -> str:
    """Write the PDF so that nobody ever sees half a file under its final name.

    On a local file system it is written under a temporary name in the same folder and
    renamed (atomic on POSIX); object stores (S3 and the like) only show an object once its
    upload is complete. The name is the certificate's number and revision, so a rerun after
    a crash replaces its own earlier attempt instead of leaving a second file behind.
    """
    try:
        final = Path(default_storage.path(name))
    except NotImplementedError:
        if default_storage.exists(name):
            default_storage.delete(name)
        return default_storage.save(name, ContentFile(data))
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".partial-", suffix=".pdf")
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_all(handle, data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return name


def _write_all(handle, data: bytes) -> None:
    handle.write(data)


@dataclass(frozen=True)
class SignedCopy:
    pdf_name: str
    pdf_sha256: str
    jws: str
    jws_key: SigningKey
    pdf_key: SigningKey


def _sign_and_store(certificate: Certificate, *, revision: int, status_line: str) -> SignedCopy:
    jws_key, jws_private = keys.active_jws_key()
    token = signing.sign_jws(
        payload=qr_payload(certificate), private_pem=jws_private, kid=jws_key.kid
    )
    pdf_signer = keys.active_pdf_signer()
    unsigned = render_certificate_pdf(
        content=render_content(
            certificate,
            qr_text=qr_text_for(base_url=settings.SITE_URL, token=token),
            key_id=jws_key.kid,
            status=status_line,
        )
    )
    signed = signing.sign_pdf(
        pdf_bytes=unsigned,
        key_pem=pdf_signer.key_pem,
        cert_pem=pdf_signer.cert_pem,
        chain_pems=pdf_signer.chain_pems,
        reason=f"Certificate {certificate.number} issued under {settings.SCHEME_NAME}",
        location=settings.SITE_URL,
        timestamp_url=settings.CERTIFICATE_TSA_URL,
    )
    suffix = "" if revision == 1 else f"-r{revision}"
    name = store_pdf_atomically(name=f"certificates/{certificate.number}{suffix}.pdf", data=signed)
    return SignedCopy(
        pdf_name=name,
        pdf_sha256=hashlib.sha256(signed).hexdigest(),
        jws=token,
        jws_key=jws_key,
        pdf_key=pdf_signer.key,
    )


def _apply(certificate: Certificate, copy: SignedCopy) -> None:
    certificate.pdf.name = copy.pdf_name
    certificate.pdf_sha256 = copy.pdf_sha256
    certificate.jws = copy.jws
    certificate.jws_key = copy.jws_key
    certificate.pdf_key = copy.pdf_key


def _discard_unless_committed(name: str) -> None:
    """Delete a PDF written by a failed attempt, unless a committed certificate points at
    that name (a concurrent attempt won and stored the same file): then it is theirs."""
    if name and not Certificate.objects.filter(pdf=name).exists():
        default_storage.delete(name)


def _crash_point(name: str) -> None:
    """Die here, as a killed worker would (SIGKILL: no cleanup, no rollback handler), when
    OPENCAS_TEST_KILL_AT names this point. Only the killed-task test sets it."""
    if os.environ.get("OPENCAS_TEST_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def certificate_issue(*, application_id: int) -> Certificate:
    """Issue the certificate of a granted case. Safe to run twice, and to rerun after a crash:
    the number is allocated once, and a certificate left 'issuing' is finished by the rerun."""
    with transaction.atomic():
        application = Application.objects.select_for_update().get(pk=application_id)
        if application.state != Application.State.CERTIFIED:
            raise ActionRefused(f"{application.reference} is not certified.")
        certificate = application.certificates.order_by("-pk").first()
        if certificate is None:
            decided = timezone.localtime(application.decided_at).date()
            certificate = Certificate.objects.create(
                number=certificate_number_allocate(year=decided.year),
                application=application,
                content=certificate_content(application=application),
                decision_date=decided,
                valid_from=decided,
                valid_until=decided + dt.timedelta(days=settings.CERTIFICATE_VALIDITY_DAYS),
            )
            audit_record(obj=certificate, action="allocate", by=None, to_state=certificate.status)
    if certificate.status != Certificate.Status.ISSUING:
        return certificate

    stored = ""
    try:
        with transaction.atomic():
            certificate = Certificate.objects.select_for_update().get(pk=certificate.pk)
            if certificate.status != Certificate.Status.ISSUING:
                return certificate
            copy = _sign_and_store(
                certificate,
                revision=1,
                status_line="Active when issued: check the current status online",
            )
            stored = copy.pdf_name
            _crash_point("after_pdf_stored")
            _apply(certificate, copy)
            certificate.activate(at=timezone.now())
            certificate.save()
            audit_record(
                obj=certificate,
                action="issue",
                by=None,
                from_state=Certificate.Status.ISSUING,
                to_state=certificate.status,
                reason=f"issued for {certificate.application.reference}",
            )
            from certificates.status_list import status_list_publish_on_commit

            if not StatusList.objects.exists():
                # The first certificate: offline verifiers get a list to start from.
                status_list_publish_on_commit()
    except BaseException:
        # The row still says 'issuing' with no PDF: the file just written belongs to nobody,
        # unless a concurrent attempt committed the same name meanwhile.
        _discard_unless_committed(stored)
        raise
    return certificate


def certificate_reissue(*, certificate: Certificate, by=None, reason: str) -> Certificate:
    """A new PDF and JWS under the active keys, with the same number: after a key revocation.

    The history keeps the old fingerprint; the old PDF file is kept, not overwritten.
    """
    stored = ""
    try:
        with transaction.atomic():
            locked = Certificate.objects.select_for_update().get(pk=certificate.pk)
            if locked.status not in Certificate.LIVE_STATUSES:
                raise Conflict(
                    f"{locked.number} is {locked.get_status_display().lower()}: only an active "
                    "or suspended certificate is re-issued."
                )
            signed_with = ", ".join(k.kid for k in (locked.jws_key, locked.pdf_key) if k)
            previous = f"sha256 {locked.pdf_sha256[:16]}… signed with {signed_with}"
            revision = locked.revision + 1
            copy = _sign_and_store(
                locked,
                revision=revision,
                status_line=f"{locked.get_status_display()} when re-issued on "
                f"{timezone.localdate():%d %B %Y} (revision {revision}): check the current "
                "status online",
            )
            stored = copy.pdf_name
            _apply(locked, copy)
            locked.revision = revision
            locked.save()
            audit_record(
                obj=locked,
                action="reissue",
                by=by,
                from_state=locked.status,
                to_state=locked.status,
                reason=f"re-issued as revision {revision}: {reason}; replaces PDF {previous}",
            )
            # Followers' downloaded PDFs now show a revoked signature: tell them to fetch anew.
            subscribers_notify(certificate=locked, action="reissue", note=reason)
            from certificates.status_list import status_list_publish_on_commit

            status_list_publish_on_commit()
    except BaseException:
        _discard_unless_committed(stored)
        raise
    return locked


def certificates_reissue_pending(*, by=None) -> list[str]:
    """Re-issue every live certificate signed with a revoked key."""
    done = []
    for certificate in Certificate.objects.key_revoked().select_related("jws_key", "pdf_key"):
        revoked = [
            k.kid for k in (certificate.jws_key, certificate.pdf_key) if k and k.status == "revoked"
        ]
        certificate_reissue(
            certificate=certificate,
            by=by,
            reason=f"signature key {', '.join(revoked)} revoked",
        )
        done.append(certificate.number)
    return done


# --- Signing keys ---


def signing_keys_rotate(*, purposes: list[str], by=None) -> list[SigningKey]:
    """New active keys; the old ones are retired (still published while they sign live
    certificates) and audited."""
    from certificates.status_list import status_list_publish_on_commit

    made = []
    for purpose in purposes:
        with transaction.atomic():
            # The audit entry (in create_key's transaction) names the retired key.
            key = keys.create_key(purpose=purpose, by=by, action="rotate")
            if purpose == SigningKey.Purpose.JWS:
                # Re-sign the status list with the new key: the old one may leave the JWKS.
                status_list_publish_on_commit()
        made.append(key)
    return made


def scheme_root_import(*, cert_pem: bytes, key_pem: bytes, by=None) -> SigningKey:
    """Use an operator's own root CA for the PDF signing certificates (before the first
    PDF key exists); the private key goes into the key store encrypted, the import is
    audited."""
    with transaction.atomic():
        return keys.import_root(cert_pem=cert_pem, key_pem=key_pem, by=by)


def signing_key_revoke(*, kid: str, reason: str, by=None) -> tuple[SigningKey, int]:
    """Revoke a (compromised) key. Certificates it signed show 're-issue pending' until
    `signing_keys reissue` runs; if it was the active key a new one takes its place."""
    if not reason.strip():
        raise ActionRefused("Revoking a key needs a reason (for example: key compromise).")
    with transaction.atomic():
        key = SigningKey.objects.select_for_update().filter(kid=kid).first()
        if key is None:
            raise ActionRefused(f"No signing key {kid!r}: see `manage.py signing_keys list`.")
        if key.status == SigningKey.Status.REVOKED:
            raise Conflict(f"The key {kid} is already revoked.")
        if key.purpose == SigningKey.Purpose.ROOT:
            raise ActionRefused(
                f"{kid} is the scheme root CA: it is not revoked with the signing keys. "
                "Revoke the PDF signing key instead, or replace the root with a new deployment."
            )
        was_active = key.status == SigningKey.Status.ACTIVE
        from_state = key.status
        key.status = SigningKey.Status.REVOKED
        key.revoked_at = timezone.now()
        key.revoked_reason = reason.strip()
        key.save(update_fields=["status", "revoked_at", "revoked_reason"])
        audit_record(
            obj=key,
            action="revoke",
            by=by,
            from_state=from_state,
            to_state=key.status,
            reason=reason.strip(),
        )
        affected = Certificate.objects.key_revoked().filter(Q(jws_key=key) | Q(pdf_key=key)).count()
        if was_active:
            # Issuance goes on under a new key; the status list below is signed with it.
            keys.create_key(
                purpose=key.purpose,
                retire_active=False,
                by=by,
                action="rotate",
                reason=f"replaces the revoked key {key.kid}",
            )
        from certificates.status_list import status_list_publish_on_commit

        status_list_publish_on_commit()
    return key, affected


# --- Verification ---


@dataclass(frozen=True)
class StatusVerdict:
    ok: bool
    code: str
    title: str
    message: str
    certificate: Certificate | None = None


@dataclass(frozen=True)
class Verification:
    signature: signing.PdfSignatureVerdict | None
    status: StatusVerdict
    payload: dict | None = None


KEY_REVOKED_MESSAGE = "signature key revoked: re-issue pending"


def status_verdict(certificate: Certificate | None, *, number: str = "") -> StatusVerdict:
    if certificate is None:
        shown = f" {number}" if number else ""
        return StatusVerdict(
            False, "unknown", "Unknown", f"No certificate{shown} was issued by this scheme."
        )
    today = timezone.localdate()
    since = (
        f"since {timezone.localtime(certificate.status_changed_at):%Y-%m-%d}"
        if certificate.status_changed_at
        else ""
    )
    if certificate.signature_key_revoked:
        return StatusVerdict(
            False,
            "key_revoked",
            "Signature key revoked",
            f"{KEY_REVOKED_MESSAGE}. The certificate itself is "
            f"{certificate.get_status_display().lower()}; a copy signed with a new key "
            "will replace the current PDF and QR code.",
            certificate,
        )
    if certificate.status == Certificate.Status.ACTIVE and certificate.valid_until < today:
        return StatusVerdict(
            False,
            "expired",
            "Expired",
            f"it was valid until {certificate.valid_until:%Y-%m-%d}.",
            certificate,
        )
    if certificate.status == Certificate.Status.ACTIVE:
        return StatusVerdict(
            True,
            "active",
            "Active",
            f"{since}; valid from {certificate.valid_from:%Y-%m-%d} "
            f"until {certificate.valid_until:%Y-%m-%d}.".lstrip("; "),
            certificate,
        )
    reason = f": {certificate.status_reason}" if certificate.status_reason else "."
    if certificate.status == Certificate.Status.SUPERSEDED and certificate.superseded_by_id:
        reason = f"; replaced by {certificate.superseded_by.number}{reason}"
    return StatusVerdict(
        False,
        certificate.status,
        certificate.get_status_display(),
        f"{since}{reason}".lstrip(": ") or "no reason recorded.",
        certificate,
    )


NUMBER_SHAPE = re.compile(r"^[A-Za-z0-9-]{1,40}$")
NO_NUMBER_READ = StatusVerdict(
    False, "unknown", "Unknown", "no certificate number could be read from this file."
)


def shown_number(text: str) -> str:
    """A number as every answer shows it: upper-cased (numbers are looked up so, and cached
    answers are shared between spellings); other text without control characters, so it can
    be repeated safely on a page."""
    text = text.strip()[:40]
    if NUMBER_SHAPE.match(text):
        return text.upper()
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith("C")).strip()


def not_a_number_verdict(text: str) -> StatusVerdict:
    shown = shown_number(text) or "The text given"
    return StatusVerdict(False, "unknown", "Unknown", f"{shown} is not a certificate number.")


def find_certificate(number: str) -> Certificate | None:
    number = number.strip()
    if not NUMBER_SHAPE.match(number):
        # Nothing else is ever a number; NUL bytes and the like would only upset the database.
        return None
    # Every by-number verification runs this: building the SQL of a four-table join costs
    # Django more than the database takes to answer it, so only the signing keys (which
    # every verdict needs) are joined; the application and the replacement are read when a
    # caller needs them. A number is unique: no ordering, one row.
    found = list(
        Certificate.objects.public()
        .select_related("jws_key", "pdf_key")
        .filter(number=number.upper())
        .order_by()[:1]
    )
    return found[0] if found else None


def _number_in_pdf(pdf_bytes: bytes) -> str:
    try:
        reader = PdfReader(io.BytesIO(pdf_bytes))
        text = reader.pages[0].extract_text() or ""
    except Exception:  # noqa: BLE001 - any unreadable PDF simply has no number to show
        return ""
    match = NUMBER_PATTERN.search(text)
    return match.group(0) if match else ""


def _pdf_signature(pdf_bytes: bytes) -> signing.PdfSignatureVerdict:
    return signing.verify_pdf_signature(
        pdf_bytes=pdf_bytes,
        trust_roots_pem=keys.trusted_pdf_roots(),
        tsa_roots_pem=keys.trusted_tsa_roots(),
    )


def _with_key_status(
    signature: signing.PdfSignatureVerdict, certificate: Certificate | None
) -> signing.PdfSignatureVerdict:
    """An intact signature by a key revoked since proves nothing: say so."""
    key = certificate.pdf_key if certificate is not None else None
    if key is None and signature.signing_cert_sha256:
        # Every PDF key shares the scheme root: a copy signed by a revoked key is found by
        # its signing certificate.
        key = keys.pdf_key_for_certificate(signature.signing_cert_sha256)
    if key is not None and key.status == SigningKey.Status.REVOKED and signature.intact:
        signature = replace(
            signature,
            ok=False,
            code="key_revoked",
            message=f"{KEY_REVOKED_MESSAGE}: this PDF is intact but its signing key "
            f"{key.kid} was revoked.",
        )
    return signature


def _pdf_verdict(pdf_bytes: bytes, certificate: Certificate | None):
    return _with_key_status(_pdf_signature(pdf_bytes), certificate)


STORED_SIGNATURE_CACHE_SECONDS = 24 * 60 * 60


def _stored_pdf_verdict(certificate: Certificate) -> signing.PdfSignatureVerdict:
    """The signature verdict of the PDF we store, checked once and then cached.

    Checking a PAdES signature costs tens of milliseconds, and the stored bytes never change
    (a re-issue stores a new file with a new digest). The cache key holds the digest and the
    PDF key, and the key's status is applied afresh on every request, so a revoked key shows
    at once. The stored file's digest is checked against pdf_sha256 on the first read.
    """
    key_id = certificate.pdf_key.kid if certificate.pdf_key else ""
    cache_key = f"verify:stored-pdf:{certificate.pdf_sha256}:{key_id}"
    signature = cache.get(cache_key)
    if signature is None:
        try:
            with certificate.pdf.open("rb") as handle:
                data = handle.read()
        except OSError:
            log.exception("the stored PDF of %s cannot be read", certificate.number)
            return signing.PdfSignatureVerdict(
                ok=False,
                code="unavailable",
                message="The stored PDF cannot be read just now; the status below stands.",
            )
        if hashlib.sha256(data).hexdigest() != certificate.pdf_sha256:
            # The file in storage is not the one we issued: never cache that.
            return _pdf_verdict(data, certificate)
        signature = _pdf_signature(data)
        cache.set(cache_key, signature, STORED_SIGNATURE_CACHE_SECONDS)
    return _with_key_status(signature, certificate)


def verify_pdf(*, pdf_bytes: bytes) -> Verification:
    digest = hashlib.sha256(pdf_bytes).hexdigest()
    certificate = (
        Certificate.objects.public().select_related("pdf_key").filter(pdf_sha256=digest).first()
    )
    signature = _pdf_verdict(pdf_bytes, certificate)
    if certificate is not None:
        return Verification(signature=signature, status=status_verdict(certificate))
    number = "" if signature.code in {"not_pdf", "unreadable"} else _number_in_pdf(pdf_bytes)
    if not number:
        return Verification(signature=signature, status=NO_NUMBER_READ)
    status = status_verdict(find_certificate(number), number=number)
    if not signature.ok and status.certificate is not None:
        # The number was read from a document that failed its signature check: say what the
        # real certificate's status is, without lending the document any credibility.
        status = StatusVerdict(
            False,
            "claimed",
            f"Claims to be {number}",
            f"the certificate {number} on record is {status.title.lower()} "
            f"({status.message.rstrip('.')}), but this document is not a faithful copy of it.",
            status.certificate,
        )
    return Verification(signature=signature, status=status)


VERDICT_CACHE_SECONDS = 300


def _state_sql() -> str:
    certificate = connection.ops.quote_name(Certificate._meta.db_table)
    key = connection.ops.quote_name(SigningKey._meta.db_table)
    # Table names come from the models, never from input.
    return (
        "SELECT c.id, c.status, c.status_changed_at, c.status_reason, c.revision, "  # noqa: S608
        "c.pdf_sha256, jk.status, pk.status, c.superseded_by_id, c.valid_from, c.valid_until "
        f"FROM {certificate} c LEFT JOIN {key} jk ON jk.id = c.jws_key_id "
        f"LEFT JOIN {key} pk ON pk.id = c.pdf_key_id WHERE c.number = %s AND c.status <> %s"
    )


def verification_state(*, number: str) -> str | None:
    """A digest of everything the by-number verdicts depend on, read in one lean query, so
    a page or JSON answer rendered for this digest can be served again as it is.

    It holds the certificate's status, since when and why, revision and PDF digest, the
    statuses of both signing keys, the replacement, the validity and today's date (expiry):
    any change to one of them is a new digest, so a cached answer is never stale. None for
    text that is not shaped like a number (not worth a cache entry)."""
    number = number.strip().upper()
    if not NUMBER_SHAPE.match(number):
        return None
    # Plain SQL: this runs on every by-number verification, and building the equivalent
    # queryset (values_list over two joins) costs several times what the query itself does.
    with connection.cursor() as cursor:
        cursor.execute(_state_sql(), [number, Certificate.Status.ISSUING])
        row = cursor.fetchone()
    state = repr((number, row, timezone.localdate().isoformat(), settings.SITE_URL))
    return hashlib.sha256(state.encode()).hexdigest()


def verify_number(*, number: str) -> Verification:
    if not NUMBER_SHAPE.match(number.strip()):
        return Verification(signature=None, status=not_a_number_verdict(number))
    number = shown_number(number)
    certificate = find_certificate(number)
    signature = None
    if certificate is not None and certificate.pdf:
        signature = _stored_pdf_verdict(certificate)
    return Verification(signature=signature, status=status_verdict(certificate, number=number))


def _revoked_kid(token: str) -> str:
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))
    except (ValueError, UnicodeError):
        return ""
    kid = header.get("kid") if isinstance(header, dict) else None
    revoked = SigningKey.objects.filter(kid=str(kid), status=SigningKey.Status.REVOKED)
    return str(kid) if isinstance(kid, str) and revoked.exists() else ""


def verify_qr(*, text: str) -> Verification:
    token = text.strip().split("#", 1)[-1].strip()
    try:
        payload, _kid = signing.verify_jws(token=token, jwks=keys.verification_jwks())
    except signing.JwsError as exc:
        message = str(exc)
        code = exc.code
        revoked = _revoked_kid(token) if code == "unknown_key" else ""
        if revoked:
            code = "key_revoked"
            message = (
                f"{KEY_REVOKED_MESSAGE}: the key {revoked} that signed this QR code was "
                "revoked, so it proves nothing; check the certificate number instead."
            )
        verdict = signing.PdfSignatureVerdict(ok=False, code=code, message=message)
        return Verification(
            signature=verdict,
            status=StatusVerdict(
                False, "unknown", "Unknown", "no status: the QR code could not be trusted."
            ),
        )
    certificate = find_certificate(str(payload.get("num", "")))
    verdict = signing.PdfSignatureVerdict(
        ok=True, code="valid", message="The QR code's signed payload is intact.", intact=True
    )
    if certificate is not None and qr_payload(certificate) != payload:
        verdict = signing.PdfSignatureVerdict(
            ok=False,
            code="mismatch",
            message="The QR code is signed but does not match the certificate on record.",
        )
    return Verification(
        signature=verdict,
        status=status_verdict(certificate, number=str(payload.get("num", ""))),
        payload=payload,
    )
