from __future__ import annotations

from celery import shared_task

from certificates.services import certificate_issue


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), max_retries=5, retry_backoff=True)
def issue_certificate(application_id: int) -> str:
    """Queued on commit of a grant; running it twice issues one certificate."""
    return certificate_issue(application_id=application_id).number


@shared_task(acks_late=True)
def publish_status_list() -> str:
    """Queued on commit of every status change, and by beat before the list lapses."""
    from certificates.status_list import status_list_publish

    return status_list_publish().issued_at.isoformat()


@shared_task(acks_late=True)
def expire_certificates() -> list[str]:
    from certificates.lifecycle import certificates_expire

    return certificates_expire()


@shared_task(acks_late=True)
def withdraw_overdue_suspensions() -> dict[str, list[str]]:
    from certificates.lifecycle import suspensions_resolve_overdue

    return suspensions_resolve_overdue()


@shared_task(acks_late=True)
def finish_pending_certificates() -> list[str]:
    """Beat: issue the certificates of granted cases whose issuance task failed or died."""
    from certificates.services import certificates_finish_pending

    return certificates_finish_pending()
