"""/api/docs/ (Swagger UI) and /api/schema/ are served by OpenCAS alone: no CDN, no
validator badge from swagger.io; the machine running it may have no internet at all."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_swagger_ui_page_references_no_external_host():
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)
    assert references, "the page loads its assets"
    for reference in references:
        assert reference.startswith("/") and not reference.startswith("//"), reference
    assert not re.search(r"https?://", page), re.findall(r"https?://[^\s\"']+", page)


def test_the_swagger_ui_assets_ship_with_opencas():
    page = Client().get("/api/docs/").content.decode()
    assets = re.findall(r"""(?:src|href)="/static/([^"]+)\"""", page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert finders.find(asset), asset


def test_the_swagger_ui_asks_no_online_validator():
    page = Client().get("/api/docs/").content.decode()
    settings = json.loads(re.search(r"const swaggerSettings = (\{.*?\});", page, re.S)[1])
    assert settings["validatorUrl"] is None


def test_the_openapi_schema_is_served_locally_and_lists_the_token_endpoints():
    response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/lab/cases/{id}/records/",
        "/api/applications/{id}/evidence/",
        "/api/evidence/files/{id}/content/",
        "/api/certificates/{number}/fhir/",
    ):
        assert path in paths
