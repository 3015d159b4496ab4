from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string


@shared_task(acks_late=True)
def send_templated_mail(
    template: str, recipients: list[str], context: dict, headers: dict | None = None
) -> int:
    """One message per recipient, so that nobody learns who else was told; `headers` are
    added to each (a task queued before they existed has none)."""
    context = {"site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"mail/{template}.subject.txt", context).split())
    body = render_to_string(f"mail/{template}.body.txt", context)
    sent = 0
    for address in recipients:
        sent += EmailMessage(
            subject=subject, body=body, to=[address], headers=headers or None
        ).send()
    return sent
