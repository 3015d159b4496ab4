from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from cas.audit import verify_chain


class Command(BaseCommand):
    help = "Check the hash chain of the audit trail and name the first broken entry."

    def handle(self, *args, **options) -> None:
        report = verify_chain()
        if not report.ok:
            raise CommandError(report.message)
        self.stdout.write(self.style.SUCCESS(report.message))
