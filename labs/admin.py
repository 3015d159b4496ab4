from __future__ import annotations

from django import forms
from django.contrib import admin

from cas.admin import AppendOnlyAdmin
from labs.models import (
    Accreditation,
    AccreditationChange,
    AccreditationWarning,
    AssessorCompetence,
    CaseFlag,
    ConflictOfInterest,
    TestRecord,
    TestReport,
)
from labs.services import accreditation_save, can_manage_accreditations, lab_declaration_save


class AccreditationForm(forms.ModelForm):
    class Meta:
        model = Accreditation
        fields = [
            "lab",
            "body",
            "number",
            "standard",
            "authorisation_number",
            "scope_domains",
            "scope_profiles",
            "valid_from",
            "valid_until",
            "status",
        ]

    def clean(self):
        data = super().clean()
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end < start:
            raise forms.ValidationError("An accreditation cannot end before it starts.")
        return data


class AccreditationChangeInline(admin.TabularInline):
    model = AccreditationChange
    extra = 0
    can_delete = False
    fields = ["changed_at", "changed_by", "reason", "before", "after"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Accreditation)
class AccreditationAdmin(admin.ModelAdmin):
    """Saved through labs.services.accreditation_save, so that every change is kept."""

    list_display = [
        "lab",
        "body",
        "number",
        "authorisation_number",
        "valid_from",
        "valid_until",
        "status",
    ]
    list_filter = ["status", "body"]
    filter_horizontal = ["scope_domains", "scope_profiles"]
    inlines = [AccreditationChangeInline]
    form = AccreditationForm

    def has_add_permission(self, request) -> bool:
        return super().has_add_permission(request) and can_manage_accreditations(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and can_manage_accreditations(
            request.user
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the history would lose its subject: suspend or withdraw instead

    def save_model(self, request, obj, form, change) -> None:
        pass  # save_related saves the fields and the scope in one service call

    def save_related(self, request, form, formsets, change) -> None:
        accreditation_save(
            accreditation=form.instance,
            by=request.user,
            reason="changed in the admin" if change else "recorded in the admin",
            scope_domains=form.cleaned_data.get("scope_domains", []),
            scope_profiles=form.cleaned_data.get("scope_profiles", []),
        )
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


@admin.register(AccreditationChange)
class AccreditationChangeAdmin(AppendOnlyAdmin):
    list_display = ["accreditation", "changed_at", "changed_by", "reason"]


@admin.register(AccreditationWarning)
class AccreditationWarningAdmin(AppendOnlyAdmin):
    list_display = ["accreditation", "days_before", "valid_until", "sent_at"]


@admin.register(CaseFlag)
class CaseFlagAdmin(AppendOnlyAdmin):
    list_display = ["application", "kind", "raised_at", "acknowledged_by", "acknowledged_at"]


class LabDeclarationAdmin(admin.ModelAdmin):
    """Saved through labs.services.lab_declaration_save (audited); never deleted."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the record of who was competent / conflicted when must stay

    def save_model(self, request, obj, form, change) -> None:
        lab_declaration_save(declaration=obj, by=request.user)


@admin.register(AssessorCompetence)
class AssessorCompetenceAdmin(LabDeclarationAdmin):
    list_display = ["user", "lab", "domain", "authorised_on", "note"]
    list_filter = ["lab", "domain"]


@admin.register(ConflictOfInterest)
class ConflictOfInterestAdmin(LabDeclarationAdmin):
    """A declaration ends by setting its valid_until."""

    list_display = ["lab", "organisation", "valid_from", "valid_until", "declared_at"]


@admin.register(TestRecord)
class TestRecordAdmin(AppendOnlyAdmin):
    """Amendments are new versions recorded through the lab's pages."""

    list_display = ["application", "aipo", "test_case", "version", "result", "recorded_by"]


@admin.register(TestReport)
class TestReportAdmin(AppendOnlyAdmin):
    """An issued report is never changed: the lab manager amends it with a new report."""

    list_display = ["number", "application", "amends", "authorised_by", "issued_at"]
