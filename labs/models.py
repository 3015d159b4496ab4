from __future__ import annotations

from django.conf import settings
from django.db import models

from cas.models import AIPO, Application, Domain, Organisation, Profile


class Accreditation(models.Model):
    """An accreditation body's ISO/IEC 17025 attestation, and the scheme's authorisation."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        WITHDRAWN = "withdrawn", "Withdrawn"

    lab = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        related_name="accreditations",
        limit_choices_to={"kind": Organisation.Kind.LAB},
    )
    body = models.CharField("accreditation body", max_length=100)
    number = models.CharField("accreditation number", max_length=60)
    standard = models.CharField(max_length=60, default="ISO/IEC 17025:2017")
    authorisation_number = models.CharField(max_length=60, blank=True)
    scope_domains = models.ManyToManyField(Domain, blank=True, related_name="+")
    scope_profiles = models.ManyToManyField(Profile, blank=True, related_name="+")
    valid_from = models.DateField()
    valid_until = models.DateField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        ordering = ["-valid_until"]

    def __str__(self) -> str:
        return f"{self.body} {self.number}"

    def covers(self, profile: Profile) -> bool:
        return profile.domain_id in {d.pk for d in self.scope_domains.all()} or profile.pk in {
            p.pk for p in self.scope_profiles.all()
        }


class ConflictOfInterest(models.Model):
    lab = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="conflicts")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    reason = models.TextField()
    declared_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.lab} declared a conflict with {self.organisation}"


class TestRecordQuerySet(models.QuerySet):
    def current(self) -> TestRecordQuerySet:
        """The latest version of each record: the ones no amendment replaced."""
        return self.filter(replaced_by__isnull=True)


class TestRecord(models.Model):
    """A lab's result for one claimed AIPO. Append-only: amendments are new versions."""

    class Result(models.TextChoices):
        PASS = "pass", "Pass"
        FAIL = "fail", "Fail"
        INCONCLUSIVE = "inconclusive", "Inconclusive"
        NOT_APPLICABLE = "not_applicable", "Not applicable"

    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="test_records"
    )
    aipo = models.ForeignKey(AIPO, on_delete=models.PROTECT, related_name="+")
    test_case = models.CharField(max_length=200, blank=True)
    tool = models.CharField("tool and version", max_length=200, blank=True)
    result = models.CharField(max_length=20, choices=Result.choices)
    comment = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by"
    )
    amendment_reason = models.TextField(blank=True)

    objects = TestRecordQuerySet.as_manager()

    class Meta:
        ordering = ["application", "aipo", "version"]

    def __str__(self) -> str:
        return f"{self.application} {self.aipo} v{self.version}: {self.result}"
