from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from evidence.services import TestReportRefused, testreport_check


class Command(BaseCommand):
    help = "Check a FHIR TestReport (JSON or XML) as an upload would: print its summary as JSON."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options) -> None:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        try:
            summary = testreport_check(data)
        except TestReportRefused as exc:
            for problem in exc.problems:
                self.stderr.write(str(problem))
            raise CommandError(
                f"{file.name} is not an acceptable TestReport: {len(exc.problems)} problem(s)"
            ) from exc
        self.stdout.write(json.dumps(summary.as_dict(), indent=2))
