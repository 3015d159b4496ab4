"""A worker killed (SIGKILL) between storing the PDF and committing: a rerun finishes the job.

The issuance runs in a separate process (`manage.py issue_pending_certificates`) against the
test database, so it needs PostgreSQL and committed rows (transaction=True).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from cas import services
from certificates import signing
from certificates.keys import trusted_pdf_roots
from certificates.models import Certificate, NumberSequence

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parents[2]


def database_url_of_test_db() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    at = f"{credentials}@" if credentials else ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{at}{host}:{port}/{quote(db['NAME'], safe='')}"


def issue_pending(settings, **extra_env: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SIGNING_KEY_DIR": str(settings.SIGNING_KEY_DIR),
        **extra_env,
    }
    for name in ("SECRET_KEY", "CELERY_BROKER_URL", "OPENCAS_KEY_PASSPHRASE"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", "issue_pending_certificates"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def media_files(settings) -> list[str]:
    """Every file under media/certificates/, partial ones included."""
    root = Path(settings.MEDIA_ROOT)
    folder = root / "certificates"
    return sorted(str(p.relative_to(root)) for p in folder.rglob("*") if p.is_file())


def test_a_worker_killed_after_storing_the_pdf_is_finished_by_a_rerun(
    pending_case, officer_frank, settings, monkeypatch
):
    from certificates import tasks

    monkeypatch.setattr(tasks.issue_certificate, "delay", lambda application_id: None)
    services.application_grant(application=pending_case, by=officer_frank)

    killed = issue_pending(settings, OPENCAS_TEST_KILL_AT="after_pdf_stored")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The kill left what a real crash leaves: a number, a row still issuing, a stored file.
    (certificate,) = Certificate.objects.all()
    assert certificate.status == "issuing" and not certificate.pdf
    assert media_files(settings) == [f"certificates/{certificate.number}.pdf"]

    rerun = issue_pending(settings)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == f"Issued: {certificate.number}"
    (finished,) = Certificate.objects.all()
    assert finished.pk == certificate.pk and finished.number == certificate.number
    assert finished.status == "active"
    assert NumberSequence.objects.get().last == 1
    assert media_files(settings) == [f"certificates/{certificate.number}.pdf"]
    with finished.pdf.open("rb") as handle:
        verdict = signing.verify_pdf_signature(
            pdf_bytes=handle.read(), trust_roots_pem=trusted_pdf_roots()
        )
    assert verdict.ok, verdict.message
    # A third run finds nothing to do.
    assert issue_pending(settings).stdout.strip() == "Issued: nothing was pending"
