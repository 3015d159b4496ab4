from django.urls import path

from evidence import views

urlpatterns = [
    path("connectathon/", views.connectathon_import_page, name="connectathon_import"),
    path("connectathon/imports/<int:pk>/", views.connectathon_job_page, name="connectathon_job"),
    path(
        "connectathon/imports/<int:pk>/progress.json",
        views.connectathon_job_progress,
        name="connectathon_job_progress",
    ),
    path("connectathon/results/", views.connectathon_results, name="connectathon_results"),
    path(
        "connectathon/<int:event_id>/matrix/",
        views.connectathon_matrix,
        name="connectathon_matrix",
    ),
    path(
        "connectathon/<int:event_id>/matrix.csv",
        views.connectathon_matrix_csv,
        name="connectathon_matrix_csv",
    ),
    path(
        "connectathon/<int:event_id>/matrix.json",
        views.connectathon_matrix_json,
        name="connectathon_matrix_json",
    ),
    path("connectathon/names/", views.connectathon_aliases, name="connectathon_aliases"),
    path("applications/<int:pk>/evidence/", views.evidence_upload, name="evidence_upload"),
    path("applications/<int:pk>/testreports/", views.testreport_upload, name="testreport_upload"),
    path(
        "applications/<int:pk>/capability-statement/",
        views.capability_statement,
        name="capability_statement",
    ),
    path("applications/<int:pk>/coverage/", views.coverage, name="coverage"),
    path("applications/<int:pk>/coverage.csv", views.coverage_csv, name="coverage_csv"),
    path("evidence/files/<int:pk>/", views.evidence_download, name="evidence_download"),
    path("evidence/testreports/<int:pk>/", views.testreport_detail, name="testreport_detail"),
]
