from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from cas.errors import ActionRefused
from cas.models import AIPO, Application, AuditEntry, Domain, Organisation, Profile


class AppendOnlyViolation(ActionRefused):
    """Someone tried to change or delete a record that may only ever be added to."""


class AppendOnlyQuerySet(models.QuerySet):
    """Bulk updates and deletes would bypass save()/delete(): refuse them too."""

    def update(self, **kwargs):
        raise AppendOnlyViolation(
            f"{self.model._meta.verbose_name_plural} are append-only: amend, never update."
        )

    def delete(self):
        raise AppendOnlyViolation(
            f"{self.model._meta.verbose_name_plural} are append-only: nothing is ever deleted."
        )

    # QuerySet.update() and delete() are the public doors; these are their private twins
    # (used by related managers, the deletion collector and save()), with Django's signatures.
    def _update(self, values):
        raise AppendOnlyViolation(
            f"{self.model._meta.verbose_name_plural} are append-only: amend, never update."
        )

    def _raw_delete(self, using):
        raise AppendOnlyViolation(
            f"{self.model._meta.verbose_name_plural} are append-only: nothing is ever deleted."
        )


class AppendOnlyModel(models.Model):
    """A row is written once: saving an existing row or deleting one raises."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyViolation(
                f"{self._meta.verbose_name} {self.pk} is append-only: it cannot be changed."
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyViolation(
            f"{self._meta.verbose_name} {self.pk} is append-only: it cannot be deleted."
        )


class Accreditation(models.Model):
    """An accreditation body's ISO/IEC 17025 attestation, and the scheme's authorisation.

    Changed only through labs.services.accreditation_save, which keeps AccreditationChange rows.
    """

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
    body = models.CharField(
        "accreditation body", max_length=100, help_text="e.g. BELAC, COFRAC, DAkkS, UKAS, A2LA"
    )
    number = models.CharField("accreditation number", max_length=60)
    standard = models.CharField(max_length=60, default="ISO/IEC 17025:2017")
    authorisation_number = models.CharField(
        "scheme authorisation number", max_length=60, blank=True
    )
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

    def is_valid_on(self, day) -> bool:
        return self.status == self.Status.ACTIVE and self.valid_from <= day <= self.valid_until

    def snapshot(self) -> dict:
        """The fields a change record keeps, before and after (JSON)."""
        return {
            "lab": self.lab.name if self.lab_id else "",
            "body": self.body,
            "number": self.number,
            "standard": self.standard,
            "authorisation_number": self.authorisation_number,
            "scope_domains": sorted(d.keyword for d in self.scope_domains.all()) if self.pk else [],
            "scope_profiles": sorted(p.keyword for p in self.scope_profiles.all())
            if self.pk
            else [],
            "valid_from": self.valid_from.isoformat() if self.valid_from else "",
            "valid_until": self.valid_until.isoformat() if self.valid_until else "",
            "status": self.status,
        }


class AccreditationChange(AppendOnlyModel):
    """One change of an accreditation: who, when, why, and every field before and after."""

    accreditation = models.ForeignKey(
        Accreditation, on_delete=models.PROTECT, related_name="changes"
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField()

    class Meta:
        ordering = ["accreditation", "changed_at", "id"]
        # Related lookups and Django internals use the base manager: it must refuse too.
        base_manager_name = "objects"

    def __str__(self) -> str:
        return f"{self.accreditation} changed {self.changed_at:%Y-%m-%d %H:%M}"

    def differences(self) -> list[tuple[str, object, object]]:
        keys = [k for k in self.after if self.before.get(k) != self.after.get(k)]
        return [(k, self.before.get(k, ""), self.after.get(k)) for k in keys]


class AccreditationWarning(models.Model):
    """A sent expiry warning, remembered so that each one is sent once per validity end."""

    accreditation = models.ForeignKey(
        Accreditation, on_delete=models.CASCADE, related_name="warnings"
    )
    days_before = models.PositiveSmallIntegerField()
    # An extension moves valid_until: the warnings start again for the new date.
    valid_until = models.DateField()
    sent_at = models.DateTimeField(default=timezone.now)
    recipients = models.TextField(blank=True)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["accreditation", "days_before", "valid_until"], name="one_warning_each"
            )
        ]

    def __str__(self) -> str:
        return f"{self.accreditation}: {self.days_before} days before {self.valid_until}"


class CaseFlag(models.Model):
    """An assigned case whose lab lost its valid accreditation: an officer must look at it."""

    class Kind(models.TextChoices):
        EXPIRED = "expired", "Accreditation expired"
        SUSPENDED = "suspended", "Accreditation suspended"
        WITHDRAWN = "withdrawn", "Accreditation withdrawn"
        OUT_OF_SCOPE = "out_of_scope", "Accreditation scope no longer covers the case"

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="lab_flags")
    accreditation = models.ForeignKey(Accreditation, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    reason = models.TextField()
    raised_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement = models.TextField(blank=True)

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            # One open flag per cause: once acknowledged, a recurrence raises a new one.
            models.UniqueConstraint(
                fields=["application", "accreditation", "kind"],
                condition=Q(acknowledged_at__isnull=True),
                name="one_open_flag_per_cause",
            )
        ]

    def __str__(self) -> str:
        return f"{self.application}: {self.get_kind_display()}"


class AssessorCompetence(models.Model):
    """A lab person's authorised competence in an IHE domain (ISO/IEC 17025 §6.2)."""

    lab = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        related_name="competences",
        limit_choices_to={"kind": Organisation.Kind.LAB},
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="competences"
    )
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="+")
    authorised_on = models.DateField(default=timezone.localdate)
    note = models.CharField(max_length=200, blank=True, help_text="training, qualification")

    class Meta:
        ordering = ["lab", "user", "domain"]
        constraints = [
            models.UniqueConstraint(fields=["lab", "user", "domain"], name="one_competence_each")
        ]

    def __str__(self) -> str:
        return f"{self.user} competent in {self.domain} at {self.lab}"


class ConflictOfInterestQuerySet(models.QuerySet):
    def active_on(self, day) -> ConflictOfInterestQuerySet:
        return self.filter(valid_from__lte=day).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=day)
        )


class ConflictOfInterest(models.Model):
    """A lab's declared conflict of interest with an organisation, for a period."""

    lab = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="conflicts")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    reason = models.TextField()
    valid_from = models.DateField(default=timezone.localdate)
    valid_until = models.DateField(null=True, blank=True, help_text="Empty: until revoked")
    declared_at = models.DateTimeField(auto_now_add=True)

    objects = ConflictOfInterestQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.lab} declared a conflict with {self.organisation}"


class TestRecordQuerySet(AppendOnlyQuerySet):
    def current(self) -> TestRecordQuerySet:
        """The latest version of each record: the ones no amendment replaced."""
        return self.filter(replaced_by__isnull=True)


class TestRecord(AppendOnlyModel):
    """A lab's result for one claimed AIPO. Append-only: amendments are new versions."""

    __test__ = False  # not a pytest test class, whatever its name says

    class Result(models.TextChoices):
        PASS = "pass", "Pass"
        FAIL = "fail", "Fail"
        INCONCLUSIVE = "inconclusive", "Inconclusive"
        NOT_APPLICABLE = "not_applicable", "Not applicable"

    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="test_records"
    )
    aipo = models.ForeignKey(AIPO, on_delete=models.PROTECT, related_name="+")
    test_case = models.CharField("test case id", max_length=200, blank=True)
    test_case_name = models.CharField(max_length=300, blank=True)
    tool = models.CharField(max_length=200, blank=True)
    tool_version = models.CharField(max_length=60, blank=True)
    result = models.CharField(max_length=20, choices=Result.choices)
    comment = models.TextField(blank=True)
    evidence_links = models.TextField(
        blank=True, help_text="URLs or references to the evidence, one a line"
    )
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
        base_manager_name = "objects"

    def __str__(self) -> str:
        return f"{self.application} {self.aipo} v{self.version}: {self.result}"

    @property
    def tool_label(self) -> str:
        return f"{self.tool} {self.tool_version}".strip()

    @property
    def evidence_list(self) -> list[str]:
        return [line.strip() for line in self.evidence_links.splitlines() if line.strip()]


def report_upload_to(report: TestReport, filename: str) -> str:
    return f"lab-reports/{report.application_id}/{filename}"


class TestReport(AppendOnlyModel):
    """The lab's issued test report for a case: never changed, only amended by a new one."""

    __test__ = False

    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="test_reports"
    )
    number = models.CharField("report id", max_length=40, unique=True)
    amends = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="amended_by"
    )
    amendment_reason = models.TextField(blank=True)
    # The technical-review approval this report releases (one report per approval).
    approval = models.OneToOneField(
        AuditEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField()
    authorised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    issued_at = models.DateTimeField()
    pdf = models.FileField(upload_to=report_upload_to)
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["application", "issued_at", "id"]
        base_manager_name = "objects"

    def __str__(self) -> str:
        return self.number
