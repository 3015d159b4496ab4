from django.apps import AppConfig


class CasConfig(AppConfig):
    name = "cas"
    verbose_name = "Cases and catalogue"
