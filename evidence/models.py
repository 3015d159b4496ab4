from __future__ import annotations

from django.conf import settings
from django.db import models

from cas.models import AIPO, Organisation, Product


class ConnectathonEvent(models.Model):
    name = models.CharField(max_length=200, unique=True)
    organiser = models.CharField(max_length=200, default="IHE")
    location = models.CharField(max_length=200, blank=True)
    start_date = models.DateField()
    end_date = models.DateField()

    class Meta:
        ordering = ["-end_date"]

    def __str__(self) -> str:
        return self.name


class ConnectathonAlias(models.Model):
    """Connectathon names that differ from ours: remembered once mapped."""

    class Kind(models.TextChoices):
        ORGANISATION = "organisation", "Organisation"
        SYSTEM = "system", "System"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=200)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "name"], name="unique_connectathon_alias")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


class ConnectathonResult(models.Model):
    class Grade(models.TextChoices):
        PASSED = "passed", "Pass"
        FAILED = "failed", "Failed"
        AT_RISK = "at_risk", "At risk"
        WITHDRAWN = "withdrawn", "Withdrawn"
        NOT_GRADED = "not_graded", "Option not graded"
        NO_PEER = "no_peer", "No peer"
        DID_NOT_COMPLETE = "did_not_complete", "Did not complete"

    event = models.ForeignKey(ConnectathonEvent, on_delete=models.CASCADE, related_name="results")
    organisation_name = models.CharField(max_length=200)
    system_name = models.CharField(max_length=200)
    aipo = models.ForeignKey(AIPO, on_delete=models.PROTECT, related_name="connectathon_results")
    test_type = models.CharField(max_length=40, blank=True)
    grade = models.CharField(max_length=20, choices=Grade.choices)
    raw_grade = models.CharField(max_length=60, blank=True)
    # Resolved from the names (directly or through an alias) when the row is imported.
    vendor = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organisation_name", "system_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "organisation_name", "system_name", "aipo"],
                name="one_result_per_system_aipo",
            )
        ]
        indexes = [models.Index(fields=["product", "aipo", "grade"])]

    def __str__(self) -> str:
        return f"{self.event}: {self.system_name} {self.aipo} {self.grade}"
