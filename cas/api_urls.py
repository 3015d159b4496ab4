"""REST endpoints of this app, mounted under /api/ by cas/urls.py."""

from __future__ import annotations

from django.urls import path

from cas import api

urlpatterns = [
    path("auth/token/", api.TokenView.as_view(), name="api_token"),
    path("catalogue/aipos/", api.CatalogueView.as_view(), name="api_catalogue"),
    path("products/", api.ProductListView.as_view(), name="api_products"),
    path("products/<int:pk>/", api.ProductDetailView.as_view(), name="api_product"),
    path("products/<int:pk>/versions/", api.VersionListView.as_view(), name="api_versions"),
    path("applications/", api.ApplicationListView.as_view(), name="api_applications"),
    path("applications/<int:pk>/", api.ApplicationDetailView.as_view(), name="api_application"),
    path(
        "applications/<int:pk>/history/",
        api.ApplicationHistoryView.as_view(),
        name="api_application_history",
    ),
    path(
        "applications/<int:pk>/messages/",
        api.ApplicationMessagesView.as_view(),
        name="api_application_messages",
    ),
] + [
    path(f"applications/<int:pk>/{slug}/", view.as_view(), name=f"api_application_{slug}")
    for slug, view in api.CASE_ACTION_VIEWS.items()
]
