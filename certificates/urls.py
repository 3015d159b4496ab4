from django.urls import path

from certificates import views

urlpatterns = [
    # --- The public registry ---
    path("registry/", views.registry, name="registry"),
    path("registry/charts/", views.registry_charts, name="registry_charts"),
    path("registry/vendors/<int:pk>/", views.registry_vendor, name="registry_vendor"),
    path("registry/labs/<int:pk>/", views.registry_lab, name="registry_lab"),
    path("registry/download/columns.csv", views.registry_columns, name="registry_columns"),
    *(
        path(
            f"registry/download/{selection}.{fmt}",
            views.registry_download,
            {"selection": selection, "fmt": fmt},
            name=f"registry_download_{selection}_{fmt}",
        )
        for selection in ("active", "inactive")
        for fmt in ("csv", "json")
    ),
    # --- end of the public registry ---
    path("certificates/manage/", views.certificates_manage, name="certificates_manage"),
    path("certificates/<str:number>/", views.certificate_detail, name="certificate_detail"),
    path("certificates/<str:number>/pdf/", views.certificate_pdf, name="certificate_pdf"),
    *(
        path(
            f"certificates/<str:number>/{action}/",
            views.certificate_change,
            {"action": action},
            name=f"certificate_{action}",
        )
        for action in ("suspend", "reinstate", "withdraw", "revoke", "supersede")
    ),
    path("certificates/<str:number>/follow/", views.certificate_follow, name="certificate_follow"),
    path(
        "subscriptions/<str:token>/confirm/",
        views.subscription_confirm,
        name="subscription_confirm",
    ),
    path(
        "subscriptions/<str:token>/unsubscribe/",
        views.subscription_unsubscribe,
        name="subscription_unsubscribe",
    ),
    path("verify/", views.verify, name="verify"),
    path("verify/qr", views.verify_qr_page, name="verify_qr"),
    path("verify/<str:number>", views.verify, name="verify_number"),
    path(".well-known/jwks.json", views.jwks, name="jwks"),
    path(".well-known/opencas-pdf-roots.pem", views.pdf_trust_roots, name="pdf_roots"),
    path(".well-known/opencas-status-list.jws", views.status_list_jws, name="status_list_jws"),
    path(".well-known/opencas-status-list.json", views.status_list_json, name="status_list_json"),
]
