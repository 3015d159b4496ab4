"""The public Connectathon Results Matrix: passes only, filterable, downloadable, linked to
the certificates that rest on each cell, in a bounded number of queries."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from django.test import Client
from django.utils import timezone
from support import aipo, page_text

from cas import services
from cas.models import Product
from certificates import lifecycle
from certificates.models import Certificate
from certificates.services import certificate_issue
from evidence.models import ConnectathonEvent, ConnectathonResult

pytestmark = pytest.mark.django_db


def add_result(event, organisation, system, triple, grade="passed", product=None):
    return ConnectathonResult.objects.create(
        event=event,
        organisation_name=organisation,
        system_name=system,
        aipo=aipo(*triple),
        grade=grade,
        vendor=product.vendor if product else None,
        product=product,
        name_key=ConnectathonResult.name_key_for(organisation, system),
    )


@pytest.fixture
def certificate(pending_case, officer_frank):
    """Helix's HelixEHR 5.1, certified for XDS.b and PDQm (both passed at connectathon_2026)."""
    application = services.application_grant(application=pending_case, by=officer_frank)
    return certificate_issue(application_id=application.pk)


@pytest.fixture
def northlink(northwind) -> Product:
    return Product.objects.create(vendor=northwind, name="NorthLink")


@pytest.fixture
def results(certificate, connectathon_2026, northlink):
    """Helix passed XDS.b and PDQm (its certificate rests on both); Northwind passed PDQm,
    CT with the SNTP option and RAD SWF, and everything else it tried is not a pass."""
    event = connectathon_2026
    for triple in (
        ("PDQm", "PDC", "NONE"),
        ("CT", "TIME_CLIENT", "NONE"),
        ("CT", "TIME_CLIENT", "SNTP"),
        ("SWF", "ADT", "NONE"),
    ):
        add_result(event, "Northwind Medical", "NorthLink", triple, product=northlink)
    for grade, triple in (
        ("failed", ("ATNA", "SN", "NONE")),
        ("at_risk", ("PAM", "PDC", "NONE")),
        ("withdrawn", ("PAM", "PDS", "NONE")),
        ("not_graded", ("PDQm", "PDC", "PATIENT_SEARCH")),
        ("no_peer", ("XDS.b", "DOC_CONSUMER", "NONE")),
        ("did_not_complete", ("CT", "TS", "NONE")),
    ):
        add_result(event, "Northwind Medical", "NorthLink", triple, grade, product=northlink)
    return event


def matrix(client, event, **query):
    return client.get(f"/connectathon/{event.pk}/matrix/", query)


def download(client, event, kind: str, **query):
    response = client.get(f"/connectathon/{event.pk}/matrix.{kind}", query)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def cell_of(page: str, system: str) -> str:
    """The HTML of a system's row."""
    match = re.search(rf"<td>{re.escape(system)}</td>(.*?)</tr>", page, re.S)
    assert match, system
    return match.group(1)


def test_it_lists_the_events_publicly_and_links_their_matrix(results, buyer):
    response = buyer.get("/connectathon/results/")
    assert response.status_code == 200
    assert f'href="/connectathon/{results.pk}/matrix/"' in page_text(response)
    assert 'href="/connectathon/results/">Results</a>' in page_text(buyer.get("/registry/"))


def test_it_shows_passed_results_only(results, buyer):
    page = page_text(matrix(buyer, results))
    assert "Northwind Medical" in page and "Helix Health Systems" in page
    for shown in ("PDQm", "XDS.b", "CT", "SWF", "TIME_CLIENT", "SNTP"):
        assert f">{shown}<" in page or f" {shown}<" in page, shown
    # Failed, at risk, withdrawn, not graded, no peer and incomplete attempts are not published.
    for hidden in ("ATNA", "PAM", "PATIENT_SEARCH", ">TS<", ">SN<"):
        assert hidden not in page, hidden
    assert "XDS.b" not in cell_of(page, "NorthLink").split("CT")[0]


def test_it_downloads_one_csv_row_per_passed_result_with_a_bom(results, buyer):
    data = download(buyer, results, "csv")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = csv_rows(data)
    assert list(rows[0]) == [
        "event",
        "organisation",
        "system",
        "domain",
        "profile",
        "actor",
        "option",
        "certificates",
    ]
    got = {(r["organisation"], r["system"], r["profile"], r["actor"], r["option"]) for r in rows}
    assert got == {
        ("Helix Health Systems", "HelixEHR", "XDS.b", "DOC_CONSUMER", "NONE"),
        ("Helix Health Systems", "HelixEHR", "PDQm", "PDC", "NONE"),
        ("Northwind Medical", "NorthLink", "PDQm", "PDC", "NONE"),
        ("Northwind Medical", "NorthLink", "CT", "TIME_CLIENT", "NONE"),
        ("Northwind Medical", "NorthLink", "CT", "TIME_CLIENT", "SNTP"),
        ("Northwind Medical", "NorthLink", "SWF", "ADT", "NONE"),
    }
    assert len(rows) == 6
    assert {r["event"] for r in rows} == {results.name}
    assert {r["domain"] for r in rows if r["profile"] == "SWF"} == {"RAD"}


def test_it_names_the_resting_certificate_in_the_download_only_for_its_product(
    results, certificate, buyer
):
    rows = csv_rows(download(buyer, results, "csv"))
    numbers = {(r["system"], r["profile"]): r["certificates"] for r in rows}
    assert numbers[("HelixEHR", "PDQm")] == certificate.number
    assert numbers[("HelixEHR", "XDS.b")] == certificate.number
    assert numbers[("NorthLink", "PDQm")] == ""


def test_it_downloads_the_same_results_as_json(results, certificate, buyer):
    document = json.loads(download(buyer, results, "json", organisation="helix"))
    assert document["event"]["name"] == results.name
    assert document["published_grades"] == ["passed"]
    assert sorted(r["profile"] for r in document["results"]) == ["PDQm", "XDS.b"]
    assert document["results"][0]["certificates"] == [
        {
            "number": certificate.number,
            "status": "active",
            "url": f"https://opencas.example/certificates/{certificate.number}/",
        }
    ]


def test_it_links_a_cell_to_the_certificate_resting_on_it_and_not_to_another_products(
    results, certificate, buyer
):
    page = page_text(matrix(buyer, results))
    link = f'href="/certificates/{certificate.number}/"'
    assert cell_of(page, "HelixEHR").count(link) == 2  # XDS.b and PDQm
    assert link not in cell_of(page, "NorthLink")  # NorthLink passed PDQm too: not its cert


def test_it_shows_the_status_of_a_certificate_that_is_no_longer_live(
    results, certificate, officer_erin, buyer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.certificate_revoke(certificate=certificate, by=officer_erin, reason="Fraud")
    row = cell_of(page_text(matrix(buyer, results)), "HelixEHR")
    assert f'href="/certificates/{certificate.number}/"' in row
    assert ">Revoked<" in row


def test_it_does_not_link_a_certificate_to_an_aipo_outside_its_granted_scope(
    results, certificate, buyer
):
    add_result(
        results,
        "Helix Health Systems",
        "HelixEHR",
        ("CT", "TIME_CLIENT", "NONE"),
        product=certificate.application.product_version.product,
    )
    rows = csv_rows(download(buyer, results, "csv", organisation="helix"))
    assert {r["profile"]: r["certificates"] for r in rows}["CT"] == ""


def test_it_filters_by_organisation_text(results, buyer):
    page = page_text(matrix(buyer, results, organisation="north"))
    assert "NorthLink" in page and "HelixEHR" not in page
    assert "1 system with a pass under these filters" in page
    rows = csv_rows(download(buyer, results, "csv", organisation="north"))
    assert {r["system"] for r in rows} == {"NorthLink"}


def test_it_filters_by_profile_actor_and_domain(results, buyer):
    by_profile = csv_rows(download(buyer, results, "csv", profile="pdqm"))
    assert {(r["system"], r["profile"]) for r in by_profile} == {
        ("HelixEHR", "PDQm"),
        ("NorthLink", "PDQm"),
    }
    by_actor = csv_rows(download(buyer, results, "csv", actor="TIME_CLIENT"))
    assert {r["option"] for r in by_actor} == {"NONE", "SNTP"}
    by_domain = csv_rows(download(buyer, results, "csv", domain="RAD"))
    assert [(r["system"], r["profile"]) for r in by_domain] == [("NorthLink", "SWF")]
    page = page_text(matrix(buyer, results, domain="RAD"))
    assert "SWF" in page and "PDQm<" not in page.split("<tbody>")[1]


def test_it_says_when_nothing_matches_the_filters(results, buyer):
    response = matrix(buyer, results, organisation="nobody", profile="\x00x" * 50, page="x")
    assert response.status_code == 200
    assert "No passed results match these filters." in page_text(response)


def test_it_answers_404_for_an_event_that_does_not_exist(buyer):
    for path in ("/connectathon/999999/matrix/", "/connectathon/999999/matrix.csv"):
        assert buyer.get(path).status_code == 404


def test_it_keeps_a_spreadsheet_from_running_a_name_as_a_formula(connectathon_2026, buyer):
    add_result(connectathon_2026, "=HYPERLINK(1)", "@SUM", ("CT", "TS", "NONE"))
    [row] = csv_rows(download(buyer, connectathon_2026, "csv"))
    assert row["organisation"] == "'=HYPERLINK(1)" and row["system"] == "'@SUM"


@pytest.fixture
def crowded_event(catalogue, connectathon_2026, northlink):
    """130 systems with three passes each and a few failures, some on a certified product."""
    triples = [("CT", "TIME_CLIENT", "NONE"), ("PDQm", "PDC", "NONE"), ("SWF", "ADT", "NONE")]
    aipos = [aipo(*t) for t in triples]
    ConnectathonResult.objects.bulk_create(
        ConnectathonResult(
            event=connectathon_2026,
            organisation_name=f"Vendor {n:03d}",
            system_name=f"System {n:03d}",
            aipo=a,
            grade="passed" if i < 3 else "failed",
            product=northlink if n % 10 == 0 else None,
            name_key=ConnectathonResult.name_key_for(f"Vendor {n:03d}", f"System {n:03d}"),
        )
        for n in range(130)
        for i, a in enumerate([*aipos, aipo("ATNA", "SN", "NONE")])
    )
    return connectathon_2026


@pytest.mark.parametrize("per_page", [25, 100])
def test_it_builds_a_page_in_a_bounded_number_of_queries(
    crowded_event, per_page, buyer, django_assert_max_num_queries
):
    with django_assert_max_num_queries(6):
        response = matrix(buyer, crowded_event, per_page=per_page, page=2)
    page = page_text(response)
    assert page.count('<th scope="row">Vendor ') == min(per_page, 130 - per_page)
    assert f"Page 2 of {-(-130 // per_page)}" in page
    assert "System 000" not in page  # on page 1


def test_it_downloads_in_a_bounded_number_of_queries_per_chunk(
    crowded_event, buyer, django_assert_max_num_queries, monkeypatch
):
    from evidence import matrix as service

    monkeypatch.setattr(service, "EXPORT_CHUNK", 100)
    # 390 rows in chunks of 100: the event, then a result query and a certificate query each.
    with django_assert_max_num_queries(1 + 2 * 4):
        rows = csv_rows(download(buyer, crowded_event, "csv"))
    assert len(rows) == 390
    assert len({(r["system"], r["profile"]) for r in rows}) == 390


def test_it_narrows_a_too_wide_page_to_the_first_profiles_and_offers_the_rest(
    connectathon_2026, buyer, monkeypatch
):
    from evidence import matrix as service

    monkeypatch.setattr(service, "MAX_COLUMNS", 2)
    for triple in (("CT", "TIME_CLIENT", "NONE"), ("CT", "TS", "NONE"), ("SWF", "ADT", "NONE")):
        add_result(connectathon_2026, "Wide Org", "Wide System", triple)
    page = page_text(matrix(buyer, connectathon_2026))
    assert "more than 2 profile/actor columns" in page
    assert "profile=SWF" in page
    assert page.split("<tbody>")[1].count('class="pass"') == 2


def test_it_is_public_and_has_no_effect_on_other_events(results, buyer):
    other = ConnectathonEvent.objects.create(
        name="Other", start_date=results.start_date, end_date=results.end_date
    )
    response = Client().get(f"/connectathon/{other.pk}/matrix/")
    assert response.status_code == 200
    assert "No passed results have been published for this event." in page_text(response)


# --- Only certificates the event could back, with the registry's status (issue 7) ---


def event_on(end: dt.date, name: str) -> ConnectathonEvent:
    return ConnectathonEvent.objects.create(
        name=name, location="Somewhere", start_date=end - dt.timedelta(days=4), end_date=end
    )


def helix_pass(event, certificate):
    add_result(
        event,
        "Helix Health Systems",
        "HelixEHR",
        ("XDS.b", "DOC_CONSUMER", "NONE"),
        product=certificate.application.product_version.product,
    )


def test_it_links_no_certificate_decided_before_the_event_ended(certificate, buyer):
    later = event_on(certificate.decision_date + dt.timedelta(days=30), "After the decision")
    helix_pass(later, certificate)
    link = f'href="/certificates/{certificate.number}/"'
    assert link not in cell_of(page_text(matrix(buyer, later)), "HelixEHR")
    assert csv_rows(download(buyer, later, "csv"))[0]["certificates"] == ""
    document = json.loads(download(buyer, later, "json"))
    assert document["results"][0]["certificates"] == []


def test_it_links_no_certificate_the_event_was_too_old_to_back(certificate, buyer, settings):
    years = settings.EVIDENCE_MAX_AGE_YEARS
    old = event_on(certificate.decision_date - dt.timedelta(days=365 * years + 10), "Long before")
    helix_pass(old, certificate)
    assert csv_rows(download(buyer, old, "csv"))[0]["certificates"] == ""
    assert certificate.number not in page_text(matrix(buyer, old))


def test_it_links_a_certificate_decided_within_the_window_after_the_event(
    certificate, buyer, settings
):
    years = settings.EVIDENCE_MAX_AGE_YEARS
    recent = event_on(
        certificate.decision_date - dt.timedelta(days=365 * years - 30), "Just in the window"
    )
    helix_pass(recent, certificate)
    assert csv_rows(download(buyer, recent, "csv"))[0]["certificates"] == certificate.number


def test_it_shows_a_certificate_past_its_end_as_expired_as_the_registry_does(
    results, certificate, buyer
):
    Certificate.objects.filter(pk=certificate.pk).update(
        valid_until=timezone.localdate() - dt.timedelta(days=1)
    )
    row = cell_of(page_text(matrix(buyer, results)), "HelixEHR")
    assert ">Expired<" in row and ">Active<" not in row
    document = json.loads(download(buyer, results, "json", organisation="helix"))
    assert {c["status"] for r in document["results"] for c in r["certificates"]} == {"expired"}
    registry = page_text(buyer.get("/registry/", {"q": certificate.number}))
    assert '<span class="badge expired">Expired</span>' in registry
