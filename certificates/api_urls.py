"""REST endpoints of this app, mounted under /api/ by cas/urls.py."""

from __future__ import annotations

from django.urls import path

from certificates.api import (
    CertificateFhirView,
    CertificateStatusChange,
    RegistryCertificateDetail,
    RegistryCertificateList,
    RegistryLabDetail,
    RegistryVendorDetail,
    VerifyApi,
    VerifyNumberApi,
)

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

# Verification: public, rate-limited, the same verdicts as /verify/.
urlpatterns += [
    path("verify/", VerifyApi.as_view(), name="api_verify"),
    path("verify/<str:number>/", VerifyNumberApi.as_view(), name="api_verify_number"),
]

# --- The public registry ---
urlpatterns += [
    path(
        "registry/certificates/",
        RegistryCertificateList.as_view(),
        name="api_registry_certificates",
    ),
    path(
        "registry/certificates/<str:number>/",
        RegistryCertificateDetail.as_view(),
        name="api_registry_certificate",
    ),
    path("registry/vendors/<int:pk>/", RegistryVendorDetail.as_view(), name="api_registry_vendor"),
    path("registry/labs/<int:pk>/", RegistryLabDetail.as_view(), name="api_registry_lab"),
]
# --- end of the public registry ---
