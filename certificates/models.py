from __future__ import annotations

from django.db import models
from django_fsm import FSMField, transition

from cas.models import Application


class SigningKey(models.Model):
    """A public key OpenCAS signs with. Private halves live in the key store, never here."""

    class Purpose(models.TextChoices):
        JWS = "jws", "QR payload (Ed25519 JWS)"
        PDF = "pdf", "PDF signature (ECDSA P-256, X.509)"

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
        SigningKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    pdf_key = models.ForeignKey(
        SigningKey, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.TextField(blank=True)

    objects = CertificateQuerySet.as_manager()

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return self.number

    @transition(field=status, source=Status.ISSUING, target=Status.ACTIVE)
    def activate(self, *, at) -> None:
        self.issued_at = at
        self.status_changed_at = at
