from __future__ import annotations

from celery import shared_task

from labs.services import accreditations_check, test_report_release, test_reports_release_pending


@shared_task(acks_late=True, autoretry_for=(ConnectionError,), max_retries=5, retry_backoff=True)
def release_test_report(application_id: int) -> str:
    """Queued on commit of a technical-review approval; running it twice releases one report."""
    report = test_report_release(application_id=application_id)
    return report.number if report else ""


@shared_task(acks_late=True)
def check_accreditations() -> dict:
    """Daily (CELERY_BEAT_SCHEDULE): expiry warnings at 60/30/7 days, flags on lapsed labs,
    and the test reports whose release failed at approval are released now."""
    summary = accreditations_check()
    summary["released"] = test_reports_release_pending()
    return summary
