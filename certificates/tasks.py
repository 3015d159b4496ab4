from __future__ import annotations

from celery import shared_task

from certificates.services import certificate_issue


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), max_retries=5, retry_backoff=True)
def issue_certificate(application_id: int) -> str:
    """Queued on commit of a grant; running it twice issues one certificate."""
    return certificate_issue(application_id=application_id).number
