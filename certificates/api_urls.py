"""REST endpoints of this app, mounted under /api/ by cas/urls.py."""

from __future__ import annotations

from django.urls import path

from certificates.api import CertificateFhirView, CertificateStatusChange

urlpatterns: list = [
    path(
        f"certificates/<str:number>/{action}/",
        CertificateStatusChange.as_view(action=action),
        name=f"api_certificate_{action}",
    )
    for action in ("suspend", "reinstate", "withdraw", "revoke", "supersede")
] + [
    path(
        "certificates/<str:number>/fhir/",
        CertificateFhirView.as_view(),
        name="api_certificate_fhir",
    ),
]
