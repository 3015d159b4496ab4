"""The project's URLs plus the floor of bench/verify_load.py: a minimal Django view doing one
primary-key query. Only bench/settings.py uses this URL conf."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from certificates.models import Certificate


def floor(request: HttpRequest, pk: int) -> HttpResponse:
    number = Certificate.objects.filter(pk=pk).values_list("number", flat=True).first()
    return HttpResponse(number or "", content_type="text/plain")


urlpatterns = [
    path("bench/floor/<int:pk>", floor, name="bench_floor"),
    path("", include("cas.urls")),
]
