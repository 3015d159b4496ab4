"""Release the test reports whose on-commit task failed (safe to run any time)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from labs.services import test_reports_release_pending


class Command(BaseCommand):
    help = "Release a test report for every technical-review approval that has none yet."

    def handle(self, *args, **options) -> None:
        numbers = test_reports_release_pending()
        self.stdout.write(f"Test reports released: {', '.join(numbers) or 'none needed'}")
