from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers

from cas.actions import ACTIONS, ActionInput
from cas.errors import ActionRefused
from cas.models import (
    AIPO,
    Actor,
    Application,
    AuditEntry,
    Domain,
    Membership,
    Organisation,
    Product,
    ProductVersion,
    Profile,
    ProfileOption,
)


class AppendOnlyAdmin(admin.ModelAdmin):
    """Records that change only through the services: the admin may read, never write."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "country", "parent"]
    list_filter = ["kind"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Domain, Actor, ProfileOption)
class CatalogueAdmin(admin.ModelAdmin):
    search_fields = ["keyword", "name"]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["keyword", "name", "domain", "status", "tf_revision"]
    list_filter = ["domain", "status"]
    search_fields = ["keyword", "name"]


@admin.register(AIPO)
class AIPOAdmin(admin.ModelAdmin):
    list_display = ["profile", "actor", "option"]
    search_fields = ["profile__keyword", "actor__keyword", "option__keyword"]
    list_select_related = ["profile", "actor", "option"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "vendor"]
    search_fields = ["name", "vendor__name"]


@admin.register(ProductVersion)
class ProductVersionAdmin(admin.ModelAdmin):
    list_display = ["product", "version"]


class CaseActionForm(helpers.ActionForm):
    """The admin's action bar, with what the case actions take: a reason and a lab."""

    text = forms.CharField(
        label="Reason / message", required=False, widget=forms.TextInput(attrs={"size": 40})
    )
    lab = forms.ModelChoiceField(
        label="Lab (assign)",
        queryset=Organisation.objects.filter(kind=Organisation.Kind.LAB),
        required=False,
    )


def _case_admin_action(slug: str, *, name: str, label: str, **fixed):
    """An admin action running one case action as the operator (by=request.user)."""
    action = ACTIONS[slug]

    def run(modeladmin, request, queryset) -> None:
        lab_id = request.POST.get("lab", "")
        given = ActionInput(
            text=request.POST.get("text", ""),
            lab=Organisation.objects.filter(kind=Organisation.Kind.LAB, pk=lab_id).first()
            if lab_id.isdigit()
            else None,
            **fixed,
        )
        # The operator acts as themself: the services apply their role and the rules.
        visible = Application.objects.visible_to(request.user).filter(pk__in=queryset)
        done = []
        for application in visible.order_by("reference"):
            try:
                updated = action.run(application, request.user, given)
            except ActionRefused as exc:
                modeladmin.message_user(
                    request, f"{application.reference}: {exc.message}", messages.ERROR
                )
            else:
                done.append(f"{updated.reference} ({updated.get_state_display().lower()})")
        if done:
            modeladmin.message_user(request, f"{label}: {', '.join(done)}.", messages.SUCCESS)

    run.__name__ = name
    return admin.action(description=label)(run)


@admin.register(Application)
class ApplicationAdmin(AppendOnlyAdmin):
    list_display = ["reference", "vendor", "product_version", "state", "lab"]
    list_filter = ["state"]
    search_fields = ["reference", "vendor__name"]
    action_form = CaseActionForm
    actions = [
        _case_admin_action(slug, name=slug.replace("-", "_"), label=ACTIONS[slug].label)
        for slug in ACTIONS
        if slug != "appeal-decision"
    ] + [
        _case_admin_action(
            "grant",
            name="grant_reduced",
            label="Grant, reduced to the AIPOs that passed",
            reduce_scope=True,
        ),
        _case_admin_action(
            "appeal-decision", name="uphold_appeal", label="Uphold the appeal", uphold=True
        ),
        _case_admin_action(
            "appeal-decision", name="dismiss_appeal", label="Dismiss the appeal", uphold=False
        ),
    ]


@admin.register(AuditEntry)
class AuditEntryAdmin(AppendOnlyAdmin):
    list_display = ["id", "at", "actor_name", "object_type", "object_id", "action", "to_state"]
    list_filter = ["object_type", "action"]
