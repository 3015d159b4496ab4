from __future__ import annotations

from django.core.management.base import BaseCommand

from certificates.services import certificates_finish_pending


class Command(BaseCommand):
    help = "Finish issuing certificates of granted cases (after a failed or killed task)."

    def handle(self, *args, **options) -> None:
        numbers = certificates_finish_pending()
        self.stdout.write(f"Issued: {', '.join(numbers) or 'nothing was pending'}")
