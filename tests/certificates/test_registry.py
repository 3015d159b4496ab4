"""The public registry: search with filters and pages, downloads, charts, vendor and lab pages."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import io
import json
import re
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone
from rest_framework.test import APIClient
from support import page_text

from cas.models import AIPO, ClaimedAIPO, Organisation
from certificates import lifecycle
from certificates.models import Certificate
from certificates.registry import COLUMNS

pytestmark = pytest.mark.django_db

BENCH = Path(__file__).resolve().parents[2] / "bench" / "registry_data.py"


def load_generator():
    spec = importlib.util.spec_from_file_location("registry_data", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def many(catalogue):
    """150 generated certificates; every application also claims one common AIPO."""
    load_generator().build_registry(certificates=150, seed=3)
    common = AIPO.objects.with_names().get(
        profile__keyword="XDS.b", actor__keyword="DOC_CONSUMER", option__keyword="NONE"
    )
    ClaimedAIPO.objects.bulk_create(
        [
            ClaimedAIPO(application_id=c.application_id, aipo=common, granted=True)
            for c in Certificate.objects.exclude(application__claims__aipo=common)
        ]
    )
    return common


@pytest.fixture(autouse=True)
def _cold_cache():
    cache.clear()  # the choices and charts caches: count the queries of a cold page


def words(response) -> str:
    """The page's text without tags, whitespace collapsed: what a reader sees."""
    return " ".join(re.sub(r"<[^>]+>", " ", page_text(response)).split())


def rows_of(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def streamed(response) -> bytes:
    return b"".join(response.streaming_content)


EVERY_FILTER = {
    "q": "BENCH-20",  # digits: the numbers are looked up too
    "vendor": "Bench Vendor",
    "product": "Product",
    "version": "1.0",
    "domain": "ITI",
    "profile": "XDS.b",
    "actor": "DOC_CONSUMER",
    "option": "NONE",
    "status": "active",
    "lab": "Test Lab",
    "issued_from": "2019-01-01",
    "issued_to": "2099-12-31",
    "expires_from": "2019-01-01",
    "expires_to": "2099-12-31",
}


# --- Search ---


def test_it_finds_a_certificate_by_its_vendor_name(certificate, buyer):
    page = words(buyer.get("/registry/", {"q": "Helix"}))
    assert certificate.number in page
    assert "1 certificate; showing 1–1" in page


def test_it_finds_a_certificate_by_part_of_its_number_or_product(certificate, buyer):
    tail = certificate.number[-4:]
    assert certificate.number in page_text(buyer.get("/registry/", {"q": tail}))
    assert certificate.number in page_text(buyer.get("/registry/", {"q": "helixehr"}))
    assert "No certificates match." in page_text(buyer.get("/registry/", {"q": "Northwind"}))


def test_it_filters_by_profile_and_status(many, buyer):
    active = Certificate.objects.filter(status="active", valid_until__gte=timezone.localdate())
    suspended = Certificate.objects.filter(status="suspended").first()
    response = buyer.get("/registry/", {"profile": "xds.b", "status": "active", "page_size": 200})
    page = words(response)
    assert response.status_code == 200
    assert f"{active.count()} certificates" in page
    assert all(c.number in page for c in active)
    assert suspended is None or suspended.number not in page


def test_it_matches_the_scope_filters_on_one_aipo(many, buyer):
    only_other = Certificate.objects.exclude(
        application__claims__aipo__actor__keyword="DOC_SOURCE",
        application__claims__aipo__profile__keyword="XDS.b",
    ).first()
    page = page_text(
        buyer.get("/registry/", {"profile": "XDS.b", "actor": "DOC_SOURCE", "page_size": 200})
    )
    assert only_other.number not in page


def test_it_shows_an_active_certificate_past_its_end_date_as_expired(certificate, buyer):
    Certificate.objects.filter(pk=certificate.pk).update(valid_until=dt.date(2020, 1, 1))
    assert certificate.number not in page_text(buyer.get("/registry/", {"status": "active"}))
    page = page_text(buyer.get("/registry/", {"status": "expired"}))
    assert certificate.number in page and '<span class="badge expired">Expired</span>' in page


def test_it_hides_certificates_being_issued(many, buyer):
    issuing = Certificate.objects.filter(status="issuing").first() or Certificate.objects.create(
        number="BENCH-2026-999999",
        application=Certificate.objects.first().application,
        content={},
        decision_date=dt.date(2026, 1, 1),
        valid_from=dt.date(2026, 1, 1),
        valid_until=dt.date(2029, 1, 1),
    )
    page = words(buyer.get("/registry/", {"q": issuing.number}))
    assert "0 certificates" in page and "No certificates match." in page


def test_it_keeps_the_filters_in_the_pagination_links(many, buyer):
    page = page_text(buyer.get("/registry/", {"lab": "Test Lab", "page_size": 10}))
    assert 'href="?lab=Test+Lab&amp;page=2&amp;page_size=10"' in page.replace("&", "&amp;")
    second = page_text(buyer.get("/registry/", {"lab": "Test Lab", "page_size": 10, "page": 2}))
    assert "Page 2 of" in second and "showing 11–20" in second


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"issued_from": "yesterday"}, "Decided from: Enter a valid date."),
        ({"page_size": "5000"}, "Page size: Ensure this value is less than or equal to 200."),
        ({"page": "0"}, "Ensure this value is greater than or equal to 1."),
        ({"status": "great"}, "Select a valid choice."),
        ({"expires_from": "2030-01-01", "expires_to": "2029-01-01"}, "is after expires until"),
        ({"page": "99"}, "there is no page 99; the search has 1 page."),
    ],
)
def test_it_explains_a_bad_search_instead_of_failing(certificate, buyer, params, message):
    response = buyer.get("/registry/", params)
    assert response.status_code == 400
    assert message in page_text(response)


@pytest.mark.parametrize("page_size", [10, 200])
def test_it_runs_at_most_ten_queries_per_search_page_with_every_filter(
    many, buyer, page_size, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = buyer.get("/registry/", {**EVERY_FILTER, "page_size": page_size})
    page = page_text(response)
    assert response.status_code == 200
    assert page.count("/registry/vendors/") >= 5  # enough rows that N+1 would show


@pytest.mark.parametrize("page_size", [10, 200])
def test_it_runs_at_most_ten_queries_per_api_page_with_every_filter(
    many, page_size, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = APIClient().get(
            "/api/registry/certificates/", {**EVERY_FILTER, "page_size": page_size}
        )
    assert response.status_code == 200
    assert len(response.json()["results"]) >= 5


@pytest.mark.parametrize("path", ["/registry/", "/api/registry/certificates/"])
def test_it_runs_at_most_ten_queries_for_200_unfiltered_rows(
    many, buyer, path, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = buyer.get(path, {"page_size": 200})
    assert response.status_code == 200
    assert (
        page_text(response).count("/registry/labs/" if path == "/registry/" else '"lab_id"') >= 50
    )


# --- The certificate page ---


def test_it_explains_every_status_in_a_legend_on_the_certificate_page(certificate, buyer):
    page = page_text(buyer.get(f"/certificates/{certificate.number}/"))
    assert "What the statuses mean" in page
    for word in ("Active", "Suspended", "Withdrawn", "Revoked", "Expired", "Superseded"):
        assert f">{word}</span></dt>" in page
    assert "Rely on the replacement." in page


def test_it_shows_each_status_change_with_its_date_and_reason(certificate, officer_erin, buyer):
    lifecycle.certificate_suspend(certificate=certificate, by=officer_erin, reason="NC-7 open")
    page = page_text(buyer.get(f"/certificates/{certificate.number}/"))
    assert f"{timezone.localdate():%Y-%m-%d}: active → suspended (NC-7 open)" in page
    assert "officer_erin" not in page and "Erin" not in page.split("status-history")[1]


def test_it_links_the_vendor_and_the_lab_to_their_registry_pages(certificate, buyer, helix, lab):
    page = page_text(buyer.get(f"/certificates/{certificate.number}/"))
    assert f'href="/registry/vendors/{helix.pk}/"' in page
    assert f'href="/registry/labs/{lab.pk}/"' in page


# --- Vendor and lab pages ---


def test_it_lists_a_vendors_public_certificates(certificate, helix, buyer):
    page = page_text(buyer.get(f"/registry/vendors/{helix.pk}/"))
    assert "Helix Health Systems" in page and certificate.number in page


def test_it_keeps_a_vendor_without_public_certificates_out_of_the_registry(northwind, buyer):
    assert buyer.get(f"/registry/vendors/{northwind.pk}/").status_code == 404


def test_it_shows_a_labs_accreditation_and_the_certificates_it_assessed(certificate, lab, buyer):
    accreditation = lab.accreditations.first()
    page = page_text(buyer.get(f"/registry/labs/{lab.pk}/"))
    assert accreditation.number in page and certificate.number in page


def test_it_answers_404_for_an_organisation_that_is_not_a_lab(helix, buyer):
    assert buyer.get(f"/registry/labs/{helix.pk}/").status_code == 404


# --- Downloads ---


def test_it_streams_the_active_csv_with_a_bom_and_the_documented_header(certificate, buyer):
    response = buyer.get("/registry/download/active.csv")
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = rows_of(streamed(response))
    dictionary = rows_of(buyer.get("/registry/download/columns.csv").content)
    assert rows[0] == [row[0] for row in dictionary[1:]]
    assert dictionary[0] == ["Column Name", "Key", "Required?", "Allowed Values", "Description"]


def test_it_writes_one_row_per_active_certificate_with_its_values(certificate, buyer, helix):
    rows = rows_of(streamed(buyer.get("/registry/download/active.csv")))
    record = dict(zip(rows[0], rows[1], strict=True))
    assert len(rows) == 2
    scope = certificate.content["scope"][0]
    assert record["Certificate Number"] == certificate.number
    assert record["Certificate Status"] == "active"
    assert record["Vendor Name"] == "Helix Health Systems"
    assert record["Vendor Database ID"] == str(helix.pk)
    assert record["Product Name"] == "HelixEHR"
    assert record["Version"] == certificate.content["product_version"]
    assert (
        f"{scope['profile_keyword']}|{scope['actor_keyword']}|{scope['option_keyword']}"
        in record["Scope"]
    )
    assert record["Valid Until"] == certificate.valid_until.isoformat()
    assert record["Certificate URL"].endswith(f"/certificates/{certificate.number}/")


def test_it_puts_suspended_and_expired_certificates_in_the_inactive_download_only(
    certificate, officer_erin, buyer
):
    lifecycle.certificate_suspend(certificate=certificate, by=officer_erin, reason="NC-9")
    active = rows_of(streamed(buyer.get("/registry/download/active.csv")))
    inactive = rows_of(streamed(buyer.get("/registry/download/inactive.csv")))
    assert len(active) == 1
    record = dict(zip(inactive[0], inactive[1], strict=True))
    assert record["Certificate Status"] == "suspended" and record["Status Reason"] == "NC-9"


def test_it_keeps_accents_intact_in_the_csv(certificate, buyer):
    content = {**certificate.content, "vendor_name": "Hélix Santé"}
    Certificate.objects.filter(pk=certificate.pk).update(content=content)
    rows = rows_of(streamed(buyer.get("/registry/download/active.csv")))
    assert rows[1][rows[0].index("Vendor Name")] == "Hélix Santé"


def test_it_offers_the_same_records_as_json(certificate, buyer):
    body = json.loads(streamed(buyer.get("/registry/download/active.json")))
    assert body["selection"] == "active"
    (record,) = body["certificates"]
    assert record["number"] == certificate.number
    assert set(record) == {c.key for c in COLUMNS}
    assert record["scope"][0]["profile"] == certificate.content["scope"][0]["profile_keyword"]
    assert json.loads(streamed(buyer.get("/registry/download/inactive.json")))["certificates"] == []


def test_it_streams_a_large_download_in_many_chunks(many, buyer):
    response = buyer.get("/registry/download/inactive.csv")
    chunks = list(response.streaming_content)
    assert len(chunks) >= 3
    assert (
        len(rows_of(b"".join(chunks)))
        == 1
        + Certificate.objects.public()
        .exclude(status="active", valid_until__gte=timezone.localdate())
        .count()
    )


# --- Charts ---


def test_it_draws_the_charts_as_inline_svg_with_their_numbers(many, buyer):
    page = page_text(buyer.get("/registry/charts/"))
    assert page.count("<svg") == 3
    assert "XDS.b" in page  # every generated application claims it: the top profile
    active = Certificate.objects.filter(status="active", valid_until__gte=timezone.localdate())
    assert f"<td>XDS.b</td><td>{active.count()}</td>" in page
    assert "<script" not in page


# --- The API ---


def test_it_serves_the_search_over_the_api_without_login(many):
    body = APIClient().get("/api/registry/certificates/", {"status": "suspended"}).json()
    suspended = Certificate.objects.filter(status="suspended")
    assert body["count"] == suspended.count()
    assert {r["number"] for r in body["results"]} == {c.number for c in suspended[:25]}


def test_it_answers_400_with_the_reason_for_a_bad_api_search(many):
    response = APIClient().get("/api/registry/certificates/", {"expires_to": "soon"})
    assert response.status_code == 400
    assert "Expires until: Enter a valid date." in response.json()["detail"]


def test_it_links_the_next_api_page_with_the_filters(many):
    body = APIClient().get("/api/registry/certificates/", {"lab": "Test", "page_size": 10}).json()
    assert body["next"].endswith("?lab=Test&page=2&page_size=10")
    assert body["previous"] is None


def test_it_gives_a_certificates_full_public_record_with_its_history(
    certificate, officer_erin, lab
):
    lifecycle.certificate_suspend(certificate=certificate, by=officer_erin, reason="NC-3")
    body = APIClient().get(f"/api/registry/certificates/{certificate.number}/").json()
    assert body["status"] == "suspended" and body["status_reason"] == "NC-3"
    assert body["lab_id"] == lab.pk and body["scope"]
    assert body["history"][-1]["from_status"] == "active"
    assert body["history"][-1]["reason"] == "NC-3"


def test_it_answers_404_for_an_unknown_certificate_over_the_api(db):
    assert APIClient().get("/api/registry/certificates/CAS-2026-999999/").status_code == 404


def test_it_gives_a_vendor_and_a_lab_with_their_certificates_over_the_api(
    certificate, helix, lab, northwind
):
    vendor = APIClient().get(f"/api/registry/vendors/{helix.pk}/").json()
    assert vendor["name"] == helix.name
    assert vendor["certificates"]["results"][0]["number"] == certificate.number
    laboratory = APIClient().get(f"/api/registry/labs/{lab.pk}/").json()
    assert laboratory["accreditations"][0]["number"] == lab.accreditations.first().number
    assert laboratory["certificates"]["count"] == 1
    assert APIClient().get(f"/api/registry/vendors/{northwind.pk}/").status_code == 404


def test_it_documents_the_registry_api_and_its_filters_in_the_schema(db):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/registry/certificates/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"q", "profile", "status", "issued_from", "expires_to", "page_size"} <= names
    assert "/api/registry/labs/{id}/" in schema["paths"]


def test_it_needs_no_login_and_ignores_a_bad_token(certificate):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token nonsense")
    assert client.get("/api/registry/certificates/").status_code == 200


def test_it_lists_only_vendor_organisations_as_vendors(lab):
    assert Organisation.objects.get(pk=lab.pk).kind == "lab"
    assert APIClient().get(f"/api/registry/vendors/{lab.pk}/").status_code == 404


def test_it_lists_the_same_fields_as_the_documented_certificate_record(certificate):
    from certificates.api import RegistryCertificateSerializer, registry_record
    from certificates.registry import RegistryFilters, registry_page

    (found,) = registry_page(filters=RegistryFilters()).certificates
    assert registry_record(found) == RegistryCertificateSerializer(found).data


def test_it_stops_counting_a_broad_search_and_says_more_than(many, buyer, settings):
    settings.REGISTRY_COUNT_CAP = 20
    page = words(buyer.get("/registry/", {"page_size": 10}))
    assert "More than 20 certificates; showing 1–10." in page
    assert "Page 1 " in page and "Page 1 of" not in page  # the last page is not known
    body = APIClient().get("/api/registry/certificates/", {"page_size": 10}).json()
    assert body["count"] == 20 and body["count_capped"] is True


def public_numbers() -> list[str]:
    return sorted(Certificate.objects.public().values_list("number", flat=True), reverse=True)


def next_link(response) -> str | None:
    match = re.search(r'<a href="\?([^"]+)" rel="next">', page_text(response))
    return match.group(1).replace("&amp;", "&") if match else None


def test_it_reaches_every_certificate_past_the_count_cap_by_following_next(
    many, buyer, monkeypatch
):
    monkeypatch.setattr("certificates.registry.COUNT_CAP", 20)
    seen: list[str] = []
    query = "page_size=25"
    while query:
        response = buyer.get("/registry/?" + query)
        assert response.status_code == 200, query
        seen += re.findall(r'<a href="/certificates/([^/]+)/">', page_text(response))
        query = next_link(response)
        assert len(seen) <= 200, "the links go round in circles"
    assert seen == public_numbers()


def test_it_serves_a_page_number_past_the_count_cap(many, buyer, settings):
    settings.REGISTRY_COUNT_CAP = 20
    response = buyer.get("/registry/", {"page_size": 10, "page": 5})
    assert response.status_code == 200
    assert "More than 20 certificates; showing 41–50." in words(response)
    assert all(number in page_text(response) for number in public_numbers()[40:50])
    past = buyer.get("/registry/", {"page_size": 10, "page": 99})
    assert past.status_code == 400
    assert "there is no page 99; the search has fewer than 99 pages." in page_text(past)


def test_it_pages_the_api_past_the_count_cap_both_ways(many, settings):
    settings.REGISTRY_COUNT_CAP = 20
    client = APIClient()
    pages, url = [], "/api/registry/certificates/?page_size=50"
    while url:
        body = client.get(url).json()
        pages.append([r["number"] for r in body["results"]])
        url = body["next"]
    assert [n for page in pages for n in page] == public_numbers()
    assert body["page"] is None and body["previous"] is not None
    back = client.get(body["previous"]).json()
    assert [r["number"] for r in back["results"]] == pages[-2]


def test_it_pages_a_vendor_past_the_count_cap(many, buyer, monkeypatch):
    monkeypatch.setattr("certificates.registry.COUNT_CAP", 3)
    vendor_id = (
        Certificate.objects.public()
        .values("application__vendor_id")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .first()
    )
    assert vendor_id["n"] > 10
    seen: list[str] = []
    query = "page_size=10"
    while query:
        response = buyer.get(f"/registry/vendors/{vendor_id['application__vendor_id']}/?" + query)
        assert response.status_code == 200
        seen += re.findall(r'<a href="/certificates/([^/]+)/">', page_text(response))
        query = next_link(response)
    assert len(seen) == vendor_id["n"] == len(set(seen))


def test_it_runs_at_most_ten_queries_for_a_page_past_the_count_cap(
    many, settings, django_assert_max_num_queries
):
    settings.REGISTRY_COUNT_CAP = 20
    after = public_numbers()[60]
    with django_assert_max_num_queries(10):
        response = APIClient().get(
            "/api/registry/certificates/", {"after": after, "page_size": 200, "lab": "Test"}
        )
    assert response.status_code == 200 and response.json()["previous"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"after": "CAS-1", "before": "CAS-2"}, "Give after or before, not both."),
        ({"after": "CAS-1", "page": "2"}, "Give a page number or after/before"),
        ({"after": "CAS 1;--"}, "After: Enter a valid value."),
    ],
)
def test_it_explains_bad_paging_by_number(certificate, buyer, params, message):
    response = buyer.get("/registry/", params)
    assert response.status_code == 400
    assert message in page_text(response)


def test_it_describes_every_download_column_in_the_readme():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Registry downloads")[1].split("\n## ")[0]
    for column in COLUMNS:
        assert f"| {column.name} | `{column.key}` |" in section
