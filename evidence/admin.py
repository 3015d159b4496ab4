from __future__ import annotations

from django.contrib import admin

from evidence.models import ConnectathonAlias, ConnectathonEvent, ConnectathonResult


@admin.register(ConnectathonEvent)
class ConnectathonEventAdmin(admin.ModelAdmin):
    list_display = ["name", "location", "start_date", "end_date"]


@admin.register(ConnectathonResult)
class ConnectathonResultAdmin(admin.ModelAdmin):
    list_display = ["event", "organisation_name", "system_name", "aipo", "grade"]
    list_filter = ["event", "grade"]
    list_select_related = ["event", "aipo__profile", "aipo__actor", "aipo__option"]


admin.site.register(ConnectathonAlias)
