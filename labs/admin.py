from __future__ import annotations

from django.contrib import admin

from labs.models import Accreditation, ConflictOfInterest, TestRecord


@admin.register(Accreditation)
class AccreditationAdmin(admin.ModelAdmin):
    list_display = ["lab", "body", "number", "valid_from", "valid_until", "status"]
    filter_horizontal = ["scope_domains", "scope_profiles"]


admin.site.register(ConflictOfInterest)


@admin.register(TestRecord)
class TestRecordAdmin(admin.ModelAdmin):
    """Append-only: amendments are new versions recorded through the lab's pages."""

    list_display = ["application", "aipo", "version", "result", "recorded_by", "recorded_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
