from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from support import client_for, page_text

from cas.models import Application, Product
from certificates.models import Certificate

pytestmark = pytest.mark.django_db


def test_it_answers_404_for_another_vendors_product(helix, vendor_alice, vendor_bob):
    product = Product.objects.create(vendor=helix, name="HelixEHR")
    assert client_for(vendor_bob).get(f"/products/{product.pk}/").status_code == 404
    response = client_for(vendor_bob).post(f"/products/{product.pk}/", {"version": "9"})
    assert response.status_code == 404
    assert not product.versions.exists()


def test_it_refuses_a_duplicate_product_version_with_a_message(helix, vendor_alice):
    product = Product.objects.create(vendor=helix, name="HelixEHR")
    client = client_for(vendor_alice)
    client.post(f"/products/{product.pk}/", {"version": "5.1"})
    response = client.post(f"/products/{product.pk}/", {"version": "5.1"})
    assert response.status_code == 400
    assert "HelixEHR 5.1 is registered already." in page_text(response)


def test_it_does_not_let_a_vendor_register_a_product_for_a_competitor(
    helix, northwind, vendor_alice
):
    response = client_for(vendor_alice).post("/products/", {"vendor": northwind.pk, "name": "Fake"})
    assert response.status_code == 400
    assert not Product.objects.filter(name="Fake").exists()


def test_it_seeds_a_demo_world_with_cases_in_many_states_and_certificates_in_each_status(
    catalogue, django_capture_on_commit_callbacks
):
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=out)
    states = set(Application.objects.values_list("state", flat=True))
    assert set(Application.State.values) == states
    statuses = sorted(Certificate.objects.values_list("status", flat=True))
    assert statuses == ["active", "active", "revoked", "superseded", "suspended", "withdrawn"]
    assert all(c.status_reason for c in Certificate.objects.exclude(status="active"))
    assert "alice" in out.getvalue() and "opencas-demo" in out.getvalue()
    call_command("seed_demo", stdout=io.StringIO())  # a second run changes nothing
    assert Certificate.objects.count() == 6
