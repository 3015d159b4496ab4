from __future__ import annotations

from django.contrib import admin

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


@admin.register(Application)
class ApplicationAdmin(AppendOnlyAdmin):
    list_display = ["reference", "vendor", "product_version", "state", "lab"]
    list_filter = ["state"]
    search_fields = ["reference", "vendor__name"]


@admin.register(AuditEntry)
class AuditEntryAdmin(AppendOnlyAdmin):
    list_display = ["id", "at", "actor_name", "object_type", "object_id", "action", "to_state"]
    list_filter = ["object_type", "action"]
