"""Connectathon results arrive through the officer's page and the command line."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from support import client_for, page_text, results_csv

from evidence.models import ConnectathonEvent, ConnectathonResult

pytestmark = pytest.mark.django_db

EVENT = {
    "event": "IHE-Europe Connectathon 2026, Brussels",
    "location": "Brussels",
    "start_date": "2026-03-23",
    "end_date": "2026-03-27",
}


def upload(data: bytes) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = "results.csv"
    return handle


def test_it_refuses_a_file_with_bad_rows_whole_and_names_each_one(catalogue, officer_erin):
    data = results_csv(
        [
            ("Helix Health Systems", "HelixEHR", "XDS.b", "DOC_CONSUMER", "NONE", "Pass"),
            ("Helix Health Systems", "HelixEHR", "XDS.b", "DOC_CONSUMER", "SOMEDAY", "Pass"),
            ("Helix Health Systems", "HelixEHR", "PDQm", "PDC", "NONE", "Maybe"),
        ]
    )
    response = client_for(officer_erin).post("/connectathon/", {**EVENT, "file": upload(data)})
    assert response.status_code == 400
    page = page_text(response)
    assert "nothing was imported" in page
    assert "line 3" in page and "SOMEDAY" in page
    assert "line 4, column Results" in page and "'Maybe' is not a known grade" in page
    assert ConnectathonResult.objects.count() == 0
    assert not ConnectathonEvent.objects.exists()


def test_it_changes_nothing_when_the_same_file_is_imported_again(catalogue, officer_erin, helix):
    data = results_csv(
        [("Helix Health Systems", "HelixEHR", "XDS.b", "DOC_CONSUMER", "NONE", "Pass")]
    )
    client = client_for(officer_erin)
    client.post("/connectathon/", {**EVENT, "file": upload(data)})
    response = client.post("/connectathon/", {**EVENT, "file": upload(data)})
    assert "1 rows, 0 new, 0 updated, 1 unchanged" in page_text(response)
    assert ConnectathonResult.objects.get().vendor == helix


def test_it_lists_organisations_it_could_not_match(catalogue, officer_erin):
    data = results_csv([("Acme Unknown", "AcmeEHR", "XDS.b", "DOC_CONSUMER", "NONE", "Pass")])
    response = client_for(officer_erin).post("/connectathon/", {**EVENT, "file": upload(data)})
    assert "unmatched organisations: Acme Unknown" in page_text(response)


def test_it_asks_for_dates_of_a_new_event(catalogue, officer_erin):
    data = results_csv([])
    response = client_for(officer_erin).post(
        "/connectathon/", {"event": "Connectathon 2027", "file": upload(data)}
    )
    assert response.status_code == 400
    assert "is a new event: give its start and end dates" in page_text(response)


def test_it_hides_the_import_page_from_vendors(catalogue, vendor_alice):
    assert client_for(vendor_alice).get("/connectathon/").status_code == 404


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
        "--start",
        "2026-03-23",
        "--end",
        "2026-03-27",
        stdout=out,
    )
    assert "1 rows, 1 new" in out.getvalue()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(results_csv([("Northwind Medical", "NW", "XDS.b", "NOPE", "", "Pass")]))
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_connectathon", str(bad), "--event", EVENT["event"], stderr=err)
    assert "XDS.b / NOPE / NONE is not a profile / actor / option triple" in err.getvalue()
    assert ConnectathonResult.objects.count() == 1
