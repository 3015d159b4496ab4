"""An officer imports a Connectathon file in a real Chromium and watches the progress bar.

The Celery task is held back (its .delay records the job) so that the page first shows a
queued job; the test then moves the job forward as the worker would, and the page's
polling must follow it to 100% and the result summary.
"""

from __future__ import annotations

import pytest
from support import log_in, results_csv

from evidence import tasks
from evidence.models import ConnectathonResult, ImportJob
from evidence.services import connectathon_job_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_officer_watches_an_import_reach_100_percent(
    live_server, catalogue, officer_erin, open_page, tmp_path, monkeypatch
):
    queued: list[int] = []
    monkeypatch.setattr(tasks.run_import_job, "delay", queued.append)
    rows = [("Acme", f"System {n}", "XDS.b", "DOC_CONSUMER", "NONE", "Pass") for n in range(5000)]
    path = tmp_path / "results.csv"
    path.write_bytes(results_csv(rows))

    page = open_page()
    log_in(page, live_server.url, "officer_erin")
    page.goto(live_server.url + "/connectathon/")
    page.fill("input[name=event]", "IHE-Europe Connectathon 2026")
    page.fill("input[name=organiser]", "IHE-Europe")
    page.fill("input[name=location]", "Brussels")
    page.fill("input[name=start_date]", "2026-03-23")
    page.fill("input[name=end_date]", "2026-03-27")
    page.set_input_files("input[name=file]", str(path))
    page.click("form[enctype] button[type=submit]")

    page.wait_for_url("**/connectathon/imports/*/")
    assert page.inner_text("#job-status") == "Queued"
    assert page.get_attribute("#job-progress", "aria-valuenow") == "0"
    [job_id] = queued

    # Half the rows checked: the bar, polled, shows a quarter of the way.
    ImportJob.objects.filter(pk=job_id).update(
        status="checking", rows_total=5000, rows_checked=2500
    )
    page.wait_for_function("document.querySelector('#job-progress .bar').textContent === '25%'")
    assert page.inner_text("#job-status") == "Checking every row"

    # Now the real run, from the start (a job is only ever claimed while queued).
    ImportJob.objects.filter(pk=job_id).update(status="queued", rows_checked=0)
    connectathon_job_run(job_id=job_id)
    page.wait_for_selector("#job-summary:not([hidden])")
    assert page.inner_text("#job-progress .bar") == "100%"
    assert page.get_attribute("#job-progress", "aria-valuenow") == "100"
    summary = " ".join(page.inner_text("#job-summary").split())
    assert summary == "Imported 5000 rows: 5000 new, 0 updated, 0 unchanged, 0 removed."
    assert ConnectathonResult.objects.count() == 5000
