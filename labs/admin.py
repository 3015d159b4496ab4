from __future__ import annotations

from django.contrib import admin

from cas.admin import AppendOnlyAdmin
from labs.models import Accreditation, ConflictOfInterest, TestRecord


@admin.register(Accreditation)
class AccreditationAdmin(admin.ModelAdmin):
    list_display = ["lab", "body", "number", "valid_from", "valid_until", "status"]
    filter_horizontal = ["scope_domains", "scope_profiles"]


admin.site.register(ConflictOfInterest)


@admin.register(TestRecord)
class TestRecordAdmin(AppendOnlyAdmin):
    """Amendments are new versions recorded through the lab's pages."""

    list_display = ["application", "aipo", "version", "result", "recorded_by", "recorded_at"]
