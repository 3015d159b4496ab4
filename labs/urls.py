"""Lab pages (see labs/views.py), mounted at the site root."""

from __future__ import annotations

from django.urls import path

from labs import views

urlpatterns = [
    path("lab/", views.my_cases, name="lab_my_cases"),
    path("lab/cases/<int:pk>/grid/", views.grid, name="lab_grid"),
    path("lab/cases/<int:pk>/complete/", views.complete, name="lab_complete"),
    path("lab/cases/<int:pk>/review/", views.review, name="lab_review"),
    path("lab/cases/<int:pk>/review/approve/", views.review_approve, name="lab_review_approve"),
    path("lab/cases/<int:pk>/review/return/", views.review_return, name="lab_review_return"),
    path("lab/cases/<int:pk>/report/amend/", views.report_amend, name="lab_report_amend"),
    path("lab/reports/<str:number>/", views.report_pdf, name="lab_report_pdf"),
    path("lab/accreditations/", views.accreditations, name="lab_accreditations"),
    path(
        "lab/accreditations/<int:pk>/status/",
        views.accreditation_status,
        name="lab_accreditation_status",
    ),
    path("lab/flags/<int:pk>/acknowledge/", views.flag_acknowledge, name="lab_flag_acknowledge"),
]
