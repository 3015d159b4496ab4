from django.contrib.auth import views as auth_views
from django.urls import path

from cas import views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account, name="account"),
    path("products/", views.product_list, name="product_list"),
    path("products/<int:pk>/", views.product_detail, name="product_detail"),
    path("applications/new/", views.application_new, name="application_new"),
    path("applications/<int:pk>/", views.application_detail, name="application_detail"),
    path("applications/<int:pk>/claims/", views.application_claims, name="application_claims"),
    path("applications/<int:pk>/submit/", views.application_submit, name="application_submit"),
    path(
        "applications/<int:pk>/withdraw/", views.application_withdraw, name="application_withdraw"
    ),
    path(
        "applications/<int:pk>/assign-lab/",
        views.application_assign_lab,
        name="application_assign_lab",
    ),
    path(
        "applications/<int:pk>/complete/", views.application_complete, name="application_complete"
    ),
    path("applications/<int:pk>/approve/", views.application_approve, name="application_approve"),
    path("applications/<int:pk>/grant/", views.application_grant, name="application_grant"),
    path("applications/<int:pk>/refuse/", views.application_refuse, name="application_refuse"),
    path(
        "applications/<int:pk>/request-info/",
        views.application_request_info,
        name="application_request_info",
    ),
    path(
        "applications/<int:pk>/resubmit/", views.application_resubmit, name="application_resubmit"
    ),
    path(
        "applications/<int:pk>/return/",
        views.application_return_for_rework,
        name="application_return_for_rework",
    ),
    path("applications/<int:pk>/appeal/", views.application_appeal, name="application_appeal"),
    path(
        "applications/<int:pk>/appeal-decision/",
        views.application_decide_appeal,
        name="application_decide_appeal",
    ),
]
