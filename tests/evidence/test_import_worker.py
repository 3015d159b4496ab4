"""A real Celery worker, fed through Redis, runs an import queued by the officer's page;
the page's progress endpoint follows it to the end. Needs Redis and PostgreSQL (the worker
is another process); skipped otherwise, failed under OPENCAS_REQUIRE_SERVICES=1."""

from __future__ import annotations

import importlib.util
import io
import time
from pathlib import Path

import pytest
from support import client_for, results_csv

from evidence.models import ConnectathonResult, ImportJob

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# The worker fixture of tests/celery, loaded by path (a "celery" package name would shadow
# Celery itself).
_spec = importlib.util.spec_from_file_location(
    "opencas_celery_worker_fixture",
    Path(__file__).resolve().parents[1] / "celery" / "test_worker_issues_certificate.py",
)
_worker_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_worker_module)
celery_worker = _worker_module.celery_worker


def test_a_worker_runs_the_import_and_the_page_sees_it_finish(
    catalogue, officer_erin, celery_worker
):
    rows = [("Acme", f"System {n}", "XDS.b", "DOC_CONSUMER", "NONE", "Pass") for n in range(3000)]
    handle = io.BytesIO(results_csv(rows))
    handle.name = "results.csv"
    client = client_for(officer_erin)
    with celery_worker.log_on_failure():
        response = client.post(
            "/connectathon/",
            {
                "event": "IHE-Europe Connectathon 2026",
                "start_date": "2026-03-23",
                "end_date": "2026-03-27",
                "file": handle,
            },
        )
        assert response.status_code == 302
        job = ImportJob.objects.get()
        states = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = client.get(f"/connectathon/imports/{job.pk}/progress.json").json()
            states.append(state["status"])
            if state["finished"]:
                break
            time.sleep(0.2)
        assert state["status"] == "done", state
        assert (state["percent"], state["created"], state["rows_written"]) == (100, 3000, 3000)
        assert ConnectathonResult.objects.count() == 3000
        assert states[0] in ("queued", "checking", "writing", "done")
