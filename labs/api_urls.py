"""REST endpoints of this app, mounted under /api/ by cas/urls.py."""

from __future__ import annotations

from django.urls import path

from labs import api

urlpatterns = [
    path("lab/cases/", api.LabCaseListView.as_view(), name="api_lab_cases"),
    path("lab/cases/<int:pk>/records/", api.LabRecordsView.as_view(), name="api_lab_records"),
    path(
        "lab/cases/<int:pk>/records/amend/",
        api.LabRecordAmendView.as_view(),
        name="api_lab_record_amend",
    ),
    path("lab/cases/<int:pk>/reports/", api.LabReportsView.as_view(), name="api_lab_reports"),
    path(
        "lab/cases/<int:pk>/reports/amend/",
        api.LabReportAmendView.as_view(),
        name="api_lab_report_amend",
    ),
]
