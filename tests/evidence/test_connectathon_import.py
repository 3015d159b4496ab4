"""Connectathon results arrive through the officer's page (a background job with a progress
bar), the aliases page and the command line."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from support import client_for, page_text, results_csv

from cas.models import Product
from evidence.models import ConnectathonAlias, ConnectathonEvent, ConnectathonResult, ImportJob
from evidence.services import connectathon_job_run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _run_queued_tasks(django_capture_on_commit_callbacks):
    """The import task is queued on commit; run it (inline, as in embedded mode) at once."""
    from django.db import transaction

    real = transaction.on_commit

    def run_now(callback, using=None, robust=False):
        with django_capture_on_commit_callbacks(execute=True):
            real(callback, using=using, robust=robust)

    import evidence.services

    evidence.services.transaction.on_commit = run_now
    yield
    evidence.services.transaction.on_commit = real


EVENT = {
    "event": "IHE-Europe Connectathon 2026",
    "organiser": "IHE-Europe",
    "location": "Brussels",
    "start_date": "2026-03-23",
    "end_date": "2026-03-27",
}
HELIX_ROWS = [
    ("Helix Health Systems", "HelixEHR", "XDS.b", "DOC_CONSUMER", "NONE", "Pass"),
    ("Helix Health Systems", "HelixEHR", "PDQm", "PDC", "NONE", "No Peer"),
]


def words(response) -> str:
    """The page's text without markup, spaces collapsed: what a reader sees."""
    return " ".join(re.sub(r"<[^>]+>", " ", page_text(response)).split()).replace(" ,", ",")


def upload(data: bytes, name: str = "results.csv") -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def xlsx(rows: list[tuple]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Organisation", "System", "Profile", "Actor", "Option", "Type", "Results"])
    for row in rows:
        sheet.append([*row[:5], "Thorough", row[5]])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def import_page(client, data: bytes, name: str = "results.csv", **extra):
    return client.post(
        "/connectathon/", {**EVENT, **extra, "file": upload(data, name)}, follow=True
    )


def test_it_imports_an_event_with_its_organiser_location_and_dates(catalogue, officer_erin):
    response = import_page(client_for(officer_erin), results_csv(HELIX_ROWS))
    assert response.status_code == 200
    assert "2 rows: 2 new, 0 updated, 0 unchanged" in words(response)
    event = ConnectathonEvent.objects.get()
    assert (event.name, event.organiser, event.location) == (
        "IHE-Europe Connectathon 2026",
        "IHE-Europe",
        "Brussels",
    )
    assert str(event.start_date) == "2026-03-23" and str(event.end_date) == "2026-03-27"
    page = page_text(client_for(officer_erin).get("/connectathon/"))
    assert "IHE-Europe Connectathon 2026" in page and "23–27 March 2026" in page
    grades = dict(ConnectathonResult.objects.values_list("aipo__profile__keyword", "grade"))
    assert grades == {"XDS.b": "passed", "PDQm": "no_peer"}


def test_it_refuses_a_file_with_bad_rows_whole_and_names_each_one(catalogue, officer_erin):
    data = results_csv(
        [
            ("Helix Health Systems", "HelixEHR", "XDS.b", "DOC_CONSUMER", "NONE", "Pass"),
            ("Helix Health Systems", "HelixEHR", "XDS.b", "DOC_CONSUMER", "SOMEDAY", "Pass"),
            ("Helix Health Systems", "HelixEHR", "PDQm", "PDC", "NONE", "Maybe"),
        ]
    )
    response = import_page(client_for(officer_erin), data)
    assert response.status_code == 400
    page = page_text(response)
    assert "2 bad rows; nothing was imported" in page
    assert "line 3" in page and "SOMEDAY" in page and "Profile/Actor/Option" in page
    assert "line 4" in page and "Results" in page and "'Maybe' is not a known grade" in page
    assert ConnectathonResult.objects.count() == 0
    assert not ConnectathonEvent.objects.exists()
    job = ImportJob.objects.get()
    assert job.status == "refused" and [e["line"] for e in job.errors] == [3, 4]


def test_it_refuses_a_duplicate_row_found_after_ten_thousand_rows(catalogue, officer_erin):
    rows = [("Acme", f"System {n}", "XDS.b", "DOC_CONSUMER", "NONE", "Pass") for n in range(3000)]
    rows.append(("Acme", "System 7", "XDS.b", "DOC_CONSUMER", "NONE", "Failed"))
    response = import_page(client_for(officer_erin), results_csv(rows))
    assert "line 3002" in page_text(response) and "duplicate of line 9" in page_text(response)
    assert ConnectathonResult.objects.count() == 0


def test_it_changes_nothing_when_the_same_file_is_imported_again(catalogue, officer_erin, helix):
    client = client_for(officer_erin)
    import_page(client, results_csv(HELIX_ROWS))
    before = list(ConnectathonResult.objects.values_list("pk", "grade", "imported_at"))
    response = import_page(client, results_csv(HELIX_ROWS))
    assert "2 rows: 0 new, 0 updated, 2 unchanged" in words(response)
    assert list(ConnectathonResult.objects.values_list("pk", "grade", "imported_at")) == before
    assert ConnectathonResult.objects.filter(vendor=helix).count() == 2


def test_a_corrected_file_updates_only_the_rows_that_changed(catalogue, officer_erin):
    client = client_for(officer_erin)
    import_page(client, results_csv(HELIX_ROWS))
    untouched = ConnectathonResult.objects.get(aipo__profile__keyword="XDS.b")
    corrected = [
        HELIX_ROWS[0],
        ("Helix Health Systems", "HelixEHR", "PDQm", "PDC", "NONE", "Pass"),
        ("Helix Health Systems", "HelixEHR", "PIXm", "PAT_IDENTITY_CONSUMER", "NONE", "Pass"),
    ]
    response = import_page(client, results_csv(corrected))
    assert "3 rows: 1 new, 1 updated, 1 unchanged" in words(response)
    assert ConnectathonResult.objects.get(aipo__profile__keyword="PDQm").grade == "passed"
    again = ConnectathonResult.objects.get(pk=untouched.pk)
    assert again.imported_at == untouched.imported_at


def test_a_corrected_file_that_drops_a_row_removes_it(catalogue, officer_erin, helix):
    client = client_for(officer_erin)
    import_page(client, results_csv(HELIX_ROWS))
    kept = ConnectathonResult.objects.get(aipo__profile__keyword="XDS.b")
    response = import_page(client, results_csv(HELIX_ROWS[:1]))
    assert "Imported 1 rows: 0 new, 0 updated, 1 unchanged, 1 removed." in words(response)
    assert list(ConnectathonResult.objects.all()) == [kept]
    assert ConnectathonResult.objects.get().imported_at == kept.imported_at
    assert ImportJob.objects.first().removed == 1


def test_a_refused_corrected_file_removes_nothing(catalogue, officer_erin):
    client = client_for(officer_erin)
    import_page(client, results_csv(HELIX_ROWS))
    before = list(ConnectathonResult.objects.values_list("pk", "grade", "imported_at"))
    bad = [HELIX_ROWS[0], ("Helix Health Systems", "HelixEHR", "NOPE", "X", "NONE", "Pass")]
    response = import_page(client, results_csv(bad))
    assert "The file was refused" in words(response)
    assert list(ConnectathonResult.objects.values_list("pk", "grade", "imported_at")) == before


def test_names_differing_only_in_case_are_the_same_result(catalogue, officer_erin, helix):
    client = client_for(officer_erin)
    import_page(client, results_csv(HELIX_ROWS))
    shouted = [("HELIX HEALTH SYSTEMS", "HELIXEHR", *row[2:]) for row in HELIX_ROWS]
    response = import_page(client, results_csv(shouted))
    assert "Imported 2 rows: 0 new, 2 updated, 0 unchanged, 0 removed." in words(response)
    assert ConnectathonResult.objects.count() == 2
    assert set(ConnectathonResult.objects.values_list("organisation_name", flat=True)) == {
        "HELIX HEALTH SYSTEMS"
    }
    assert set(ConnectathonResult.objects.values_list("vendor", flat=True)) == {helix.pk}


def test_it_imports_an_xlsx_export_like_a_csv(catalogue, officer_erin):
    response = import_page(client_for(officer_erin), xlsx(HELIX_ROWS), name="results.xlsx")
    assert "2 rows: 2 new" in words(response)
    assert ConnectathonResult.objects.count() == 2


def test_it_names_the_bad_cell_of_an_xlsx_export(catalogue, officer_erin):
    rows = [*HELIX_ROWS, ("Helix Health Systems", "HelixEHR", "MHD", "DOC_SOURCE", "", "Great")]
    response = import_page(client_for(officer_erin), xlsx(rows), name="results.xlsx")
    assert response.status_code == 400
    assert "'Great' is not a known grade" in page_text(response)
    assert "line 4" in page_text(response)
    assert ConnectathonResult.objects.count() == 0


def test_it_refuses_a_file_that_is_not_a_workbook(catalogue, officer_erin):
    response = import_page(client_for(officer_erin), b"not a zip", name="results.xlsx")
    assert "not a readable XLSX workbook" in page_text(response)
    assert ConnectathonResult.objects.count() == 0


def test_the_task_reports_its_progress_and_the_page_polls_it(catalogue, officer_erin):
    rows = [("Acme", f"System {n}", "XDS.b", "DOC_CONSUMER", "NONE", "Pass") for n in range(4500)]
    client = client_for(officer_erin)
    response = client.post("/connectathon/", {**EVENT, "file": upload(results_csv(rows))})
    job = ImportJob.objects.get()
    assert response.url == f"/connectathon/imports/{job.pk}/"
    progress = client.get(f"/connectathon/imports/{job.pk}/progress.json").json()
    assert progress["status"] == "done" and progress["finished"] is True
    assert progress["percent"] == 100
    assert (progress["rows_total"], progress["rows_checked"], progress["rows_written"]) == (
        4500,
        4500,
        4500,
    )
    assert progress["created"] == 4500


def test_the_task_reports_each_written_batch(catalogue, officer_erin, monkeypatch):
    """(On PostgreSQL these counters reach the job row at once: test_import_progress_postgres.)"""
    from evidence import services

    rows = [("Acme", f"System {n}", "XDS.b", "DOC_CONSUMER", "NONE", "Pass") for n in range(4500)]
    reported: list[tuple[str, int]] = []
    real_write = services._write_results

    def spy(**kwargs):
        inner = kwargs["progress"]

        def progress(phase, done):
            inner(phase, done)
            reported.append((phase, done))

        kwargs["progress"] = progress
        return real_write(**kwargs)

    monkeypatch.setattr(services, "_write_results", spy)
    import_page(client_for(officer_erin), results_csv(rows))
    assert reported == [("writing", 2000), ("writing", 4000), ("writing", 4500)]


def test_running_a_finished_job_again_changes_nothing(catalogue, officer_erin):
    import_page(client_for(officer_erin), results_csv(HELIX_ROWS))
    job = ImportJob.objects.get()
    assert connectathon_job_run(job_id=job.pk).status == "done"
    assert ConnectathonResult.objects.count() == 2


def test_it_asks_for_dates_of_a_new_event(catalogue, officer_erin):
    response = client_for(officer_erin).post(
        "/connectathon/", {"event": "Connectathon 2027", "file": upload(results_csv([]))}
    )
    assert response.status_code == 400
    assert "is a new event: give its start and end dates" in page_text(response)
    assert not ImportJob.objects.exists()


def test_it_hides_the_import_pages_from_vendors(catalogue, vendor_alice, officer_erin):
    import_page(client_for(officer_erin), results_csv(HELIX_ROWS))
    job = ImportJob.objects.get()
    client = client_for(vendor_alice)
    for url in (
        "/connectathon/",
        f"/connectathon/imports/{job.pk}/",
        f"/connectathon/imports/{job.pk}/progress.json",
        "/connectathon/names/",
    ):
        assert client.get(url).status_code == 404


# --- Aliases ---


def test_unmatched_names_are_listed_mapped_and_remembered(catalogue, officer_erin, helix):
    product = Product.objects.create(vendor=helix, name="HelixEHR")
    client = client_for(officer_erin)
    rows = [("Helix Health", "Helix EHR Suite", "XDS.b", "DOC_CONSUMER", "NONE", "Pass")]
    response = import_page(client, results_csv(rows))
    assert "Organisation Helix Health" in page_text(response)
    page = page_text(client.get("/connectathon/names/"))
    assert "Helix Health" in page

    # The organisation first: its results follow, the system is now listed under Helix.
    response = client.post(
        "/connectathon/names/",
        {"kind": "organisation", "name": "Helix Health", "organisation": helix.pk},
        follow=True,
    )
    assert "Every organisation is matched" in page_text(response)
    assert "Helix EHR Suite" in page_text(response)
    assert ConnectathonResult.objects.get().vendor == helix

    client.post(
        "/connectathon/names/",
        {
            "kind": "system",
            "name": "Helix EHR Suite",
            "organisation": helix.pk,
            "product": product.pk,
        },
    )
    assert ConnectathonResult.objects.get().product == product
    assert ConnectathonAlias.objects.count() == 2

    # The next event's file uses the same names: resolved at import, nothing left to map.
    import_page(client, results_csv(rows), event="IHE-NA Connectathon 2026")
    later = ConnectathonResult.objects.get(event__name="IHE-NA Connectathon 2026")
    assert (later.vendor, later.product) == (helix, product)
    assert "Every system of a known vendor is matched" in page_text(
        client.get("/connectathon/names/")
    )


def coverage_of(client, application) -> dict[str, str]:
    """Profile -> Connectathon cell of the case's coverage CSV, as the vendor downloads it."""
    response = client.get(f"/applications/{application.pk}/coverage.csv")
    lines = response.content.decode().splitlines()[1:]
    return {line.split(",")[0]: line.split(",")[3] for line in lines}


def test_re_mapping_an_organisation_moves_its_results_off_the_old_vendors_product(
    make_application, officer_erin, vendor_alice, northwind
):
    application = make_application("draft", passed=[])
    helix_product = application.product_version.product
    client = client_for(officer_erin)
    rows = [("Helix Hlth", "HelixEHR", "XDS.b", "DOC_CONSUMER", "NONE", "Pass")]
    import_page(client, results_csv(rows), event="IHE-NA Connectathon 2026")

    names = "/connectathon/names/"
    client.post(
        names,
        {"kind": "organisation", "name": "Helix Hlth", "organisation": helix_product.vendor.pk},
    )
    result = ConnectathonResult.objects.get(organisation_name="Helix Hlth")
    assert (result.vendor, result.product) == (helix_product.vendor, helix_product)
    assert coverage_of(client_for(vendor_alice), application)["XDS.b"].startswith("Pass")

    # The officer was wrong: the name is Northwind's, which has no HelixEHR product.
    response = client.post(
        names,
        {"kind": "organisation", "name": "helix hlth", "organisation": northwind.pk},
        follow=True,
    )
    assert response.status_code == 200
    result.refresh_from_db()
    assert (result.vendor, result.product) == (northwind, None)
    assert coverage_of(client_for(vendor_alice), application)["XDS.b"] == "no result"
    assert ConnectathonAlias.objects.get().organisation == northwind
    assert ConnectathonAlias.objects.count() == 1
    assert "HelixEHR" in page_text(client.get(names))  # now a system to map under Northwind


def test_two_vendors_may_each_alias_a_system_of_the_same_name(
    catalogue, officer_erin, helix, northwind
):
    helix_gateway = Product.objects.create(vendor=helix, name="Helix Gateway")
    northwind_gateway = Product.objects.create(vendor=northwind, name="NW Gateway")
    rows = [
        ("Helix Health Systems", "Gateway", "XDS.b", "DOC_CONSUMER", "NONE", "Pass"),
        ("Northwind Medical", "GATEWAY", "XDS.b", "DOC_CONSUMER", "NONE", "Pass"),
    ]
    client = client_for(officer_erin)
    import_page(client, results_csv(rows))
    for organisation, product in ((helix, helix_gateway), (northwind, northwind_gateway)):
        response = client.post(
            "/connectathon/names/",
            {
                "kind": "system",
                "name": "Gateway",
                "organisation": organisation.pk,
                "product": product.pk,
            },
        )
        assert response.status_code == 302
    assert ConnectathonAlias.objects.count() == 2
    # Applied to the rows already there whatever their case, each under its own vendor.
    assert ConnectathonResult.objects.get(vendor=helix).product == helix_gateway
    assert ConnectathonResult.objects.get(vendor=northwind).product == northwind_gateway
    # And remembered for the next event, under each vendor.
    import_page(client, results_csv(rows), event="IHE-NA Connectathon 2026")
    later = ConnectathonResult.objects.filter(event__name="IHE-NA Connectathon 2026")
    assert {(r.vendor, r.product) for r in later} == {
        (helix, helix_gateway),
        (northwind, northwind_gateway),
    }


def test_a_system_alias_must_name_a_product_of_that_vendor(
    catalogue, officer_erin, helix, northwind
):
    other = Product.objects.create(vendor=northwind, name="NW-Repository")
    response = client_for(officer_erin).post(
        "/connectathon/names/",
        {"kind": "system", "name": "Helix EHR", "organisation": helix.pk, "product": other.pk},
    )
    assert response.status_code == 400
    assert "Choose one of Helix Health Systems's products" in page_text(response)
    assert not ConnectathonAlias.objects.exists()


# --- Command line ---


def test_it_imports_from_the_command_line_and_reports_a_refused_file(catalogue, tmp_path):
    good = tmp_path / "good.csv"
    good.write_bytes(
        results_csv([("Northwind Medical", "NW-Repository", "XDS.b", "DOC_REGISTRY", "", "Pass")])
    )
    out = io.StringIO()
    call_command(
        "import_connectathon",
        str(good),
        "--event",
        EVENT["event"],
        "--organiser",
        "IHE-Europe",
        "--location",
        "Brussels",
        "--start",
        "2026-03-23",
        "--end",
        "2026-03-27",
        stdout=out,
    )
    assert "1 rows, 1 new" in out.getvalue()
    assert ConnectathonEvent.objects.get().organiser == "IHE-Europe"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(results_csv([("Northwind Medical", "NW", "XDS.b", "NOPE", "", "Pass")]))
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_connectathon", str(bad), "--event", EVENT["event"], stderr=err)
    assert "line 2, column Profile/Actor/Option" in err.getvalue()
    assert "XDS.b / NOPE / NONE is not a profile / actor / option triple" in err.getvalue()
    assert ConnectathonResult.objects.count() == 1


def test_the_command_reads_xlsx_too(catalogue, tmp_path):
    path = tmp_path / "results.xlsx"
    path.write_bytes(xlsx(HELIX_ROWS))
    out = io.StringIO()
    call_command(
        "import_connectathon",
        str(path),
        "--event",
        EVENT["event"],
        "--start",
        "2026-03-23",
        "--end",
        "2026-03-27",
        stdout=out,
    )
    assert "2 rows, 2 new" in out.getvalue()


def test_a_second_delivery_of_a_running_job_does_not_start_it_again(catalogue, officer_erin):
    from django.core.files.storage import default_storage

    name = default_storage.save("connectathon-imports/x.csv", io.BytesIO(results_csv(HELIX_ROWS)))
    job = ImportJob.objects.create(
        event_name="E", file_name=name, original_name="x.csv", status="writing"
    )
    assert connectathon_job_run(job_id=job.pk).status == "writing"
    assert not ConnectathonResult.objects.exists()


def test_the_job_row_counts_the_rows_checked_as_the_first_pass_reads(
    catalogue, officer_erin, monkeypatch
):
    from evidence import services

    rows = [("Acme", f"System {n}", "XDS.b", "DOC_CONSUMER", "NONE", "Pass") for n in range(4500)]
    stored: list[tuple[int, int]] = []
    real_check = services.connectathon_check

    def spy(**kwargs):
        inner = kwargs["progress"]

        def progress(phase, done):
            inner(phase, done)
            job = ImportJob.objects.get()  # what the progress endpoint reads
            stored.append((job.rows_checked, job.percent))

        kwargs["progress"] = progress
        return real_check(**kwargs)

    monkeypatch.setattr(services, "connectathon_check", spy)
    import_page(client_for(officer_erin), results_csv(rows))
    # rows_total is first estimated from the file's lines (4501 with the header).
    assert stored == [(2000, 2000 * 50 // 4501), (4000, 4000 * 50 // 4501)]
