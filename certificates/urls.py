from django.urls import path

from certificates import views

urlpatterns = [
    path("registry/", views.registry, name="registry"),
    path("certificates/<str:number>/", views.certificate_detail, name="certificate_detail"),
    path("certificates/<str:number>/pdf/", views.certificate_pdf, name="certificate_pdf"),
    path("verify/", views.verify, name="verify"),
    path("verify/qr", views.verify_qr_page, name="verify_qr"),
    path("verify/<str:number>", views.verify, name="verify_number"),
    path(".well-known/jwks.json", views.jwks, name="jwks"),
    path(".well-known/opencas-pdf-roots.pem", views.pdf_trust_roots, name="pdf_roots"),
]
