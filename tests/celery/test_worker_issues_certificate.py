"""A real Celery worker, fed through Redis, issues the certificate of a grant made over HTTP.

The worker is a separate process, so it must see the rows the test commits: that needs a
real database server (PostgreSQL; SQLite test databases live in memory) and a
transaction=True test. conftest.py skips this test when Redis or PostgreSQL is missing, and
fails it instead when OPENCAS_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import kombu.pools
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone
from support import client_for

from cas.celery import app as celery_app
from cas.models import Application
from certificates.keys import trusted_pdf_roots
from certificates.models import Certificate
from certificates.signing import verify_pdf_signature

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parents[2]
BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/15"
WORKER_TIMEOUT = 60


def database_url_of_test_database() -> str:
    """The URL of the database pytest-django made (test_<name>), for the worker process."""
    db = connection.settings_dict
    assert db["ENGINE"] == "django.db.backends.postgresql", "the worker needs PostgreSQL"
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    at = f"{credentials}@" if credentials else ""
    return f"postgres://{at}{host}:{port}/{quote(db['NAME'], safe='')}"


def _drop_producer_pools() -> None:
    """Forget broker connections made with another configuration (they are cached)."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    # kombu also keeps producer pools per connection in a global registry; one left pointing
    # at a pool closed above breaks the next task sent, even an eager one (Celery 5.7 takes a
    # producer for eager tasks too, for its serializer).
    kombu.pools.reset()


class Worker:
    def __init__(self, process: subprocess.Popen, log_path: Path, queue: str) -> None:
        self.process = process
        self.log_path = log_path
        self.queue = queue

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no worker log)"

    @contextlib.contextmanager
    def log_on_failure(self):
        """Print the worker's log (shown under 'Captured stdout call') if the block fails."""
        try:
            yield
        except BaseException:
            print(f"\n----- celery worker log ({self.log_path}) -----\n{self.log()}")
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # warm shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def celery_worker(settings):
    """Point this process's Celery at Redis and start a worker on a queue of its own."""
    queue = f"opencas-test-{uuid.uuid4().hex[:12]}"
    saved = {
        key: celery_app.conf[key]
        for key in ("broker_url", "task_always_eager", "task_default_queue")
    }
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = BROKER_URL
    _drop_producer_pools()
    celery_app.conf.broker_url = BROKER_URL
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cas.settings",
        "DATABASE_URL": database_url_of_test_database(),
        "CELERY_BROKER_URL": BROKER_URL,
        "SIGNING_KEY_DIR": str(settings.SIGNING_KEY_DIR),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SITE_URL": settings.SITE_URL,
        "PYTHONUNBUFFERED": "1",
    }
    # The log lives outside tmp_path, which the autouse _isolated_files fixture removes.
    log_fd, log_name = tempfile.mkstemp(prefix="opencas-celery-worker-", suffix=".log")
    log_path = Path(log_name)
    with os.fdopen(log_fd, "wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "cas",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    worker = Worker(process, log_path, queue)
    try:
        yield worker
    finally:
        worker.stop()
        _drop_producer_pools()
        for key, value in saved.items():
            celery_app.conf[key] = value
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(BROKER_URL, socket_connect_timeout=2)
            client.delete(queue, *client.scan_iter(match=f"_kombu.binding*{queue}*"))
        log_path.unlink(missing_ok=True)


def test_a_worker_issues_the_certificate_queued_by_a_grant(
    make_application,
    lab,
    assessor_carol,
    reviewer_dave,
    officer_erin,
    officer_frank,
    celery_worker,
):
    application = make_application(
        "decision_pending",
        lab_org=lab,
        recorder=assessor_carol,
        reviewer=reviewer_dave,
        officer=officer_erin,
    )

    with celery_worker.log_on_failure():
        # The grant commits for real, and its on_commit sends issue_certificate to Redis.
        response = client_for(officer_frank).post(
            f"/applications/{application.pk}/grant/", {"reason": "all AIPOs passed"}
        )
        assert response.status_code == 302, response.content.decode()[:2000]

        deadline = time.monotonic() + WORKER_TIMEOUT
        certificate = None
        while time.monotonic() < deadline:
            certificate = Certificate.objects.filter(
                application=application, status=Certificate.Status.ACTIVE
            ).first()
            if certificate is not None:
                break
            if celery_worker.process.poll() is not None:
                pytest.fail(f"the worker exited with code {celery_worker.process.returncode}")
            time.sleep(0.5)
        else:
            pytest.fail(f"no active certificate after {WORKER_TIMEOUT} s")

        # (refresh_from_db would write the protected FSM state field: fetch a new instance)
        decided = timezone.localtime(Application.objects.get(pk=application.pk).decided_at)
        assert re.fullmatch(rf"CAS-{decided:%Y}-\d{{6}}", certificate.number), certificate.number
        assert Certificate.objects.filter(application=application).count() == 1

        assert certificate.pdf.name and default_storage.exists(certificate.pdf.name)
        assert Path(default_storage.path(certificate.pdf.name)).is_relative_to(
            Path(settings.MEDIA_ROOT)
        )
        with default_storage.open(certificate.pdf.name, "rb") as handle:
            pdf_bytes = handle.read()
        assert hashlib.sha256(pdf_bytes).hexdigest() == certificate.pdf_sha256
        verdict = verify_pdf_signature(pdf_bytes=pdf_bytes, trust_roots_pem=trusted_pdf_roots())
        assert verdict.code == "valid", verdict.message
        # Issued by the worker process, not inline in this one.
        assert "Task certificates.tasks.issue_certificate" in celery_worker.log()
