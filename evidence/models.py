from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from cas.models import AIPO, Application, Organisation, Product


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
        # An organisation name means one vendor; a system name means one product of the
        # vendor it is listed under (two vendors may both call a system "Gateway"). Names are
        # matched whatever their case, as the import resolves them.
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                "kind",
                condition=models.Q(kind="organisation"),
                name="unique_organisation_alias",
            ),
            models.UniqueConstraint(
                Lower("name"),
                "kind",
                "organisation",
                condition=models.Q(kind="system"),
                name="unique_system_alias_per_vendor",
            ),
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
    # The organisation and system names case-folded (name_key_for): "HELIX" and "Helix" are one
    # organisation, in the file's duplicate check as in matching the rows already stored.
    name_key = models.CharField(max_length=401, editable=False)

    class Meta:
        ordering = ["organisation_name", "system_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "name_key", "aipo"], name="one_result_per_system_aipo_any_case"
            )
        ]
        indexes = [models.Index(fields=["product", "aipo", "grade"])]

    def __str__(self) -> str:
        return f"{self.event}: {self.system_name} {self.aipo} {self.grade}"

    @staticmethod
    def name_key_for(organisation_name: str, system_name: str) -> str:
        return f"{organisation_name.casefold()}\x1f{system_name.casefold()}"[:401]


class ImportJob(models.Model):
    """One Connectathon file import, run by a Celery task; the page polls its progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        CHECKING = "checking", "Checking every row"
        WRITING = "writing", "Writing results"
        DONE = "done", "Imported"
        REFUSED = "refused", "Refused"
        FAILED = "failed", "Failed"

    FINISHED = (Status.DONE, Status.REFUSED, Status.FAILED)

    event_name = models.CharField(max_length=200)
    organiser = models.CharField(max_length=200, blank=True)
    location = models.CharField(max_length=200, blank=True)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    event = models.ForeignKey(
        ConnectathonEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    # The uploaded file, kept in storage under a generated name until the task has read it.
    file_name = models.CharField(max_length=300)
    original_name = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_checked = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    unmatched = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"import of {self.original_name} into {self.event_name}: {self.status}"

    @property
    def percent(self) -> int:
        """Checking is the first half of the bar, writing the second."""
        if self.status == self.Status.DONE:
            return 100
        if not self.rows_total:
            return 0
        done = min(self.rows_checked, self.rows_total) + min(self.rows_written, self.rows_total)
        return min(99, done * 50 // self.rows_total)


def evidence_storage_name(sha256: str) -> str:
    return f"evidence/{sha256[:2]}/{sha256}"


class EvidenceBlob(models.Model):
    """The bytes of an uploaded file, stored once under their SHA-256, never changed."""

    sha256 = models.CharField(max_length=64, unique=True)
    size = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=10)
    storage_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sha256[:12]} ({self.kind}, {self.size} bytes)"


class EvidenceFile(models.Model):
    """A blob attached to a case, under the name the vendor gave it, for some claimed AIPOs."""

    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="evidence_files"
    )
    blob = models.ForeignKey(EvidenceBlob, on_delete=models.PROTECT, related_name="files")
    original_name = models.CharField(max_length=255)
    description = models.CharField(max_length=300, blank=True)
    aipos = models.ManyToManyField(AIPO, blank=True, related_name="+")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded_at"]
        constraints = [
            models.UniqueConstraint(fields=["application", "blob"], name="one_copy_per_case")
        ]

    def __str__(self) -> str:
        return f"{self.application}: {self.original_name}"


class FhirTestReport(models.Model):
    """The summary of an ingested FHIR TestReport; its file is an EvidenceFile of the case."""

    application = models.ForeignKey(
        Application, on_delete=models.PROTECT, related_name="fhir_test_reports"
    )
    evidence_file = models.ForeignKey(EvidenceFile, on_delete=models.PROTECT, related_name="+")
    fhir_version = models.CharField(max_length=5)
    name = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=20)
    result = models.CharField(max_length=10)
    score = models.FloatField(null=True, blank=True)
    tester = models.CharField(max_length=300, blank=True)
    issued = models.DateTimeField(null=True, blank=True)
    # As sent: FHIR allows a partial date ("2026-03"); issued is then its first instant.
    issued_text = models.CharField(max_length=40, blank=True)
    participants = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    aipos = models.ManyToManyField(AIPO, blank=True, related_name="+")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded_at"]

    def __str__(self) -> str:
        return f"{self.application}: TestReport {self.name or self.pk} {self.result}"


class FhirTestReportTest(models.Model):
    """One test of a TestReport (setup and teardown are stored as tests of their section)."""

    report = models.ForeignKey(FhirTestReport, on_delete=models.CASCADE, related_name="tests")
    position = models.PositiveIntegerField()
    section = models.CharField(max_length=10)
    name = models.CharField(max_length=300, blank=True)
    outcome = models.CharField(max_length=10)

    class Meta:
        ordering = ["report", "position"]

    def __str__(self) -> str:
        return f"{self.section} {self.name}: {self.outcome}"


class FhirTestReportAction(models.Model):
    test = models.ForeignKey(FhirTestReportTest, on_delete=models.CASCADE, related_name="actions")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=10)
    result = models.CharField(max_length=10)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["test", "position"]

    def __str__(self) -> str:
        return f"{self.kind} {self.result}"
