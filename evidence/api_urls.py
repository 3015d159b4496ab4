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
    path("applications/<int:pk>/evidence/", api.CaseEvidenceView.as_view(), name="api_evidence"),
    path("evidence/files/<int:pk>/", api.EvidenceFileView.as_view(), name="api_evidence_file"),
    path(
        "evidence/files/<int:pk>/content/",
        api.EvidenceFileContentView.as_view(),
        name="api_evidence_file_content",
    ),
]
