from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("cas.api_urls")),
    path("api/", include("evidence.api_urls")),
    path("api/", include("labs.api_urls")),
    path("api/", include("certificates.api_urls")),
    path("", include("cas.urls_app")),
    path("", include("evidence.urls")),
    path("", include("labs.urls")),
    path("", include("certificates.urls")),
]

# JSON for an unknown URL under /api/, the usual page elsewhere.
handler404 = "cas.api.not_found"
