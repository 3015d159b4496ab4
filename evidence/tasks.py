from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def run_import_job(job_id: int) -> str:
    """Load the job and run it; a second run of a finished job changes nothing."""
    from evidence.services import connectathon_job_run

    return connectathon_job_run(job_id=job_id).status
