from __future__ import annotations

from django.contrib import admin

from cas.admin import AppendOnlyAdmin
from evidence.models import (
    ConnectathonAlias,
    ConnectathonEvent,
    ConnectathonResult,
    EvidenceBlob,
    EvidenceFile,
    FhirTestReport,
    ImportJob,
)


@admin.register(ConnectathonEvent)
class ConnectathonEventAdmin(admin.ModelAdmin):
    list_display = ["name", "location", "start_date", "end_date"]


@admin.register(ConnectathonResult)
class ConnectathonResultAdmin(admin.ModelAdmin):
    list_display = ["event", "organisation_name", "system_name", "aipo", "grade"]
    list_filter = ["event", "grade"]
    list_select_related = ["event", "aipo__profile", "aipo__actor", "aipo__option"]


admin.site.register(ConnectathonAlias)


# Evidence is immutable once received: the admin shows it, never edits or deletes it.


@admin.register(EvidenceBlob)
class EvidenceBlobAdmin(AppendOnlyAdmin):
    list_display = ["sha256", "kind", "size", "created_at"]


@admin.register(EvidenceFile)
class EvidenceFileAdmin(AppendOnlyAdmin):
    list_display = ["application", "original_name", "blob", "uploaded_by", "uploaded_at"]


@admin.register(FhirTestReport)
class FhirTestReportAdmin(AppendOnlyAdmin):
    list_display = ["application", "name", "result", "score", "fhir_version", "uploaded_at"]


@admin.register(ImportJob)
class ImportJobAdmin(AppendOnlyAdmin):
    list_display = ["original_name", "event_name", "status", "rows_total", "created_at"]
