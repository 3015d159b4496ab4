"""On PostgreSQL the bar moves while the results are written: the job's counters are
written through a second connection, outside the import's one transaction."""

from __future__ import annotations

import io
import threading

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from support import results_csv

from evidence import services
from evidence.models import ConnectathonResult, ImportJob

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def read_from_another_connection(job_id: int) -> tuple[int, int]:
    """What a polling page would see right now: (rows written, results committed)."""
    seen: list[tuple[int, int]] = []

    def read() -> None:
        try:
            job = ImportJob.objects.get(pk=job_id)
            seen.append((job.rows_written, ConnectathonResult.objects.count()))
        finally:
            connection.close()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    return seen[0]


def test_a_poller_sees_rows_written_before_the_import_commits(catalogue, officer_erin, monkeypatch):
    rows = [("Acme", f"System {n}", "XDS.b", "DOC_CONSUMER", "NONE", "Pass") for n in range(4100)]
    name = default_storage.save("connectathon-imports/test.csv", io.BytesIO(results_csv(rows)))
    job = ImportJob.objects.create(
        event_name="IHE-Europe Connectathon 2026",
        start_date="2026-03-23",
        end_date="2026-03-27",
        file_name=name,
        original_name="test.csv",
        created_by=officer_erin,
    )
    observed: list[tuple[int, int]] = []
    real_write = services._write_results

    def watching(**kwargs):
        inner = kwargs["progress"]

        def progress(phase: str, done: int) -> None:
            inner(phase, done)
            if phase == "writing" and done < 4100:
                # Wait (boundedly) for the writer thread to commit this batch's counter.
                for _ in range(200):
                    written, committed = read_from_another_connection(job.pk)
                    if written == done:
                        break
                    threading.Event().wait(0.05)
                observed.append((written, committed))

        kwargs["progress"] = progress
        return real_write(**kwargs)

    monkeypatch.setattr(services, "_write_results", watching)
    services.connectathon_job_run(job_id=job.pk)
    # The counters moved while nothing was committed yet: the import is still all or nothing.
    assert observed == [(2000, 0), (4000, 0)]
    job.refresh_from_db()
    assert (job.status, job.rows_written, job.percent) == ("done", 4100, 100)
    assert ConnectathonResult.objects.count() == 4100
