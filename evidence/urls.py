from django.urls import path

from evidence import views

urlpatterns = [
    path("connectathon/", views.connectathon_import_page, name="connectathon_import"),
]
