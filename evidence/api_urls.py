"""REST endpoints of this app, mounted under /api/ by cas/urls.py."""

from __future__ import annotations

from django.urls import path

from evidence import api

urlpatterns = [
    path(
        "applications/<int:pk>/testreports/",
        api.TestReportPush.as_view(),
        name="api_testreport_push",
    ),
]
