from __future__ import annotations

from django.db import models
from django.db.models import F
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone
from django_fsm import FSMField, transition

from cas.models import Application


class SigningKey(models.Model):
    """A public key OpenCAS signs with. Private halves live in the key store, never here."""

    class Purpose(models.TextChoices):
        JWS = "jws", "QR payload (Ed25519 JWS)"
        PDF = "pdf", "PDF signature (ECDSA P-256, X.509)"
        ROOT = "root", "Scheme root CA (issues the PDF signing certificates)"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired (still verifies)"
        REVOKED = "revoked", "Revoked"

    kid = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    public_jwk = models.JSONField(null=True, blank=True)
    certificate_pem = models.TextField(blank=True)
    root_certificate_pem = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["purpose"],
                condition=models.Q(status="active"),
                name="one_active_key_per_purpose",
            )
        ]

    def __str__(self) -> str:
        return f"{self.purpose} key {self.kid} ({self.status})"


class NumberSequence(models.Model):
    """Last number handed out per prefix and year; locked row, so numbers are never reused."""

    prefix = models.CharField(max_length=10)
    year = models.PositiveIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prefix", "year"], name="one_sequence_per_year")
        ]

    def __str__(self) -> str:
        return f"{self.prefix}-{self.year}: last {self.last}"


class CertificateQuerySet(models.QuerySet):
    def public(self) -> CertificateQuerySet:
        return self.exclude(status=Certificate.Status.ISSUING)

    def live(self) -> CertificateQuerySet:
        """Certificates a buyer may still rely on, or that may become reliable again."""
        return self.filter(status__in=Certificate.LIVE_STATUSES)

    def key_revoked(self) -> CertificateQuerySet:
        """Live certificates signed with a revoked key: they wait to be re-issued."""
        revoked = SigningKey.Status.REVOKED
        return self.live().filter(
            models.Q(jws_key__status=revoked) | models.Q(pdf_key__status=revoked)
        )


# The version printed on a certificate, as text (a bare KT would compare JSON on SQLite); the
# registry filters on this very expression so that PostgreSQL uses the index on it.
PRINTED_VERSION = Cast(KT("content__product_version"), models.CharField())


class Certificate(models.Model):
    class Status(models.TextChoices):
        ISSUING = "issuing", "Being issued"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        WITHDRAWN = "withdrawn", "Withdrawn"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"
        SUPERSEDED = "superseded", "Superseded"

    number = models.CharField(max_length=30, unique=True)
    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="certificates"
    )
    status = FSMField(default=Status.ISSUING, choices=Status.choices, protected=True)
    # Everything the certificate states, frozen at issuance: later edits of the vendor,
    # product or catalogue never change an issued certificate.
    content = models.JSONField()
    decision_date = models.DateField()
    valid_from = models.DateField()
    valid_until = models.DateField()
    issued_at = models.DateTimeField(null=True, blank=True)
    pdf = models.FileField(upload_to="certificates/", blank=True)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    jws = models.TextField(blank=True)
    jws_key = models.ForeignKey(
        SigningKey,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jws_certificates",
    )
    pdf_key = models.ForeignKey(
        SigningKey,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="pdf_certificates",
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.TextField(blank=True)
    # 1 at issue; each re-issue (new PDF and JWS, same number) adds one.
    revision = models.PositiveIntegerField(default=1)
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="supersedes"
    )
    # When the vendor was told that this suspension will turn into a withdrawal.
    withdrawal_warned_at = models.DateTimeField(null=True, blank=True)

    objects = CertificateQuerySet.as_manager()

    class Meta:
        ordering = ["-number"]
        # The public registry filters and sorts on these at 100,000 certificates.
        indexes = [
            models.Index(fields=["status", "-number"], name="certificate_status_number"),
            models.Index(fields=["valid_until"], name="certificate_valid_until"),
            models.Index(fields=["decision_date"], name="certificate_decision_date"),
            # Covering indexes (PostgreSQL only; other databases skip them): the
            # page walks the numbers newest first, and the count joins from applications,
            # each testing status and dates in the index without reading the wide rows.
            models.Index(
                fields=["-number"],
                include=["id", "status", "application", "decision_date", "valid_until"],
                name="certificate_number_covering",
            ),
            models.Index(
                fields=["application"],
                include=["status", "number", "decision_date", "valid_until"],
                name="certificate_application_cover",
            ),
            # The version filter matches the version printed on the certificate, newest first.
            models.Index(PRINTED_VERSION, F("number").desc(), name="certificate_version"),
        ]

    def __str__(self) -> str:
        return self.number

    LIVE_STATUSES = (Status.ACTIVE, Status.SUSPENDED)

    @property
    def signature_key_revoked(self) -> bool:
        revoked = SigningKey.Status.REVOKED
        keys = [k for k in (self.jws_key, self.pdf_key) if k is not None]
        return self.status in self.LIVE_STATUSES and any(k.status == revoked for k in keys)

    def _changed(self, *, at, reason: str) -> None:
        self.status_changed_at = at
        self.status_reason = reason

    @transition(field=status, source=Status.ISSUING, target=Status.ACTIVE)
    def activate(self, *, at) -> None:
        self.issued_at = at
        self.status_changed_at = at

    @transition(field=status, source=Status.ACTIVE, target=Status.SUSPENDED)
    def suspend(self, *, at, reason: str) -> None:
        self._changed(at=at, reason=reason)
        self.withdrawal_warned_at = None

    @transition(field=status, source=Status.SUSPENDED, target=Status.ACTIVE)
    def reinstate(self, *, at, reason: str) -> None:
        self._changed(at=at, reason=reason)

    @transition(field=status, source=[Status.ACTIVE, Status.SUSPENDED], target=Status.WITHDRAWN)
    def withdraw(self, *, at, reason: str) -> None:
        self._changed(at=at, reason=reason)

    @transition(field=status, source=[Status.ACTIVE, Status.SUSPENDED], target=Status.REVOKED)
    def revoke(self, *, at, reason: str) -> None:
        self._changed(at=at, reason=reason)

    @transition(field=status, source=[Status.ACTIVE, Status.SUSPENDED], target=Status.EXPIRED)
    def expire(self, *, at, reason: str) -> None:
        self._changed(at=at, reason=reason)

    @transition(field=status, source=[Status.ACTIVE, Status.SUSPENDED], target=Status.SUPERSEDED)
    def supersede(self, *, at, reason: str, replacement: Certificate) -> None:
        self._changed(at=at, reason=reason)
        self.superseded_by = replacement


class StatusList(models.Model):
    """One signed status list as published; the newest row is served as it is."""

    issued_at = models.DateTimeField()
    valid_until = models.DateTimeField()
    document = models.TextField()  # the exact JSON bytes that were signed
    jws = models.TextField()
    key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-issued_at", "-pk"]

    def __str__(self) -> str:
        return f"status list of {self.issued_at:%Y-%m-%d %H:%M:%S}"


class CertificateSubscription(models.Model):
    """A buyer following a certificate by e-mail: mailed on every status change once confirmed.

    One row per request: a second request for the same address makes a new row (with its own
    token) until one is confirmed, so requests can be counted and limited per address and day.
    """

    certificate = models.ForeignKey(
        Certificate, on_delete=models.CASCADE, related_name="subscriptions"
    )
    email = models.EmailField(max_length=254)  # stored lower-cased
    # secrets.token_urlsafe: confirms, then unsubscribes; only ever sent to the address.
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["email", "created_at"], name="subscription_email_created"),
            models.Index(fields=["certificate", "created_at"], name="subscription_cert_created"),
        ]

    def __str__(self) -> str:
        return f"{self.email} follows {self.certificate_id}"

    @property
    def active(self) -> bool:
        return self.confirmed_at is not None and self.unsubscribed_at is None
