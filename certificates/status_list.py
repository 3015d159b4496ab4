"""The signed status list: every certificate that is not active, for offline verifiers.

Regenerated (and stored) after every status change commits, after a JWS key rotation and
after the first issuance, and re-signed by Celery beat before it lapses, so the public URL
serves a stored document and never signs on a request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from certificates import keys, signing
from certificates.models import Certificate, SigningKey, StatusList

log = logging.getLogger("opencas.certificates")


def status_list_document(*, issued_at: dt.datetime) -> dict:
    valid_until = issued_at + dt.timedelta(hours=settings.CERTIFICATE_STATUS_LIST_VALIDITY_HOURS)
    entries = []
    rows = (
        Certificate.objects.public()
        .select_related("superseded_by", "jws_key", "pdf_key")
        .order_by("number")
    )
    for certificate in rows:
        if certificate.status == Certificate.Status.ACTIVE and not (
            certificate.signature_key_revoked
        ):
            continue
        since = certificate.status_changed_at or certificate.issued_at
        entry = {
            "number": certificate.number,
            "status": certificate.status,
            "since": since.isoformat() if since else None,
            "reason": certificate.status_reason,
        }
        if certificate.superseded_by_id:
            entry["superseded_by"] = certificate.superseded_by.number
        if certificate.signature_key_revoked:
            # Still active, but the copy in the buyer's hands is signed with a revoked key.
            entry["signature_key_revoked"] = True
        entries.append(entry)
    return {
        "issuer": settings.SITE_URL,
        # Offline verifiers cannot ask whether a key was revoked: an old PDF signed by a
        # revoked key still chains to the scheme root, and a re-issued certificate is no
        # longer marked above, so the revoked keys themselves are listed.
        "revoked_keys": revoked_keys(),
        "scheme": settings.SCHEME_NAME,
        "issued_at": issued_at.isoformat(),
        "valid_until": valid_until.isoformat(),
        # JWT-style times too, so generic JOSE tooling can check freshness.
        "iat": int(issued_at.timestamp()),
        "exp": int(valid_until.timestamp()),
        "certificates": entries,
    }


def revoked_keys() -> list[dict]:
    """Every revoked signing key: its kid, purpose and, for a PDF key, the SHA-256 of its
    signing certificate (DER), which is what a verifier reads out of the signature."""
    rows = SigningKey.objects.filter(
        status=SigningKey.Status.REVOKED,
        purpose__in=[SigningKey.Purpose.JWS, SigningKey.Purpose.PDF],
    ).order_by("revoked_at", "kid")
    listed = []
    for key in rows:
        entry = {
            "kid": key.kid,
            "purpose": key.purpose,
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        }
        if key.purpose == SigningKey.Purpose.PDF and key.certificate_pem:
            der = x509.load_pem_x509_certificate(key.certificate_pem.encode()).public_bytes(
                serialization.Encoding.DER
            )
            entry["certificate_sha256"] = hashlib.sha256(der).hexdigest()
        listed.append(entry)
    return listed


def status_list_publish() -> StatusList:
    """Sign the current list with the active JWS key and store it."""
    issued_at = timezone.now().replace(microsecond=0)
    document = status_list_document(issued_at=issued_at)
    key, private = keys.active_jws_key()
    jws = signing.sign_jws(payload=document, private_pem=private, kid=key.kid)
    body = json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return StatusList.objects.create(
        issued_at=issued_at,
        valid_until=dt.datetime.fromisoformat(document["valid_until"]),
        document=body,
        jws=jws,
        key=key,
    )


def status_list_publish_on_commit() -> None:
    from certificates.tasks import publish_status_list

    def publish() -> None:
        try:
            publish_status_list.delay()
        except Exception:
            # The change is committed whatever happens here; the list served stays the last
            # good one until beat or the next change re-signs it.
            log.exception("publishing the status list failed")

    transaction.on_commit(publish)


def status_list_current() -> StatusList | None:
    """The last stored list, as it is: a page view never signs or writes anything. Lists are
    signed only after a status change commits and by beat (publish_status_list); None until
    the first one exists."""
    return StatusList.objects.first()
