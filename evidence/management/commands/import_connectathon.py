from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from cas.errors import ActionRefused
from evidence.importers import ImportRefused
from evidence.models import ConnectathonEvent
from evidence.services import connectathon_event_get_or_create, connectathon_import


class Command(BaseCommand):
    help = "Import a Gazelle 'Connectathon results summary' (CSV or XLSX) into an event."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--event", required=True, help="event name")
        parser.add_argument("--organiser", default="", help="e.g. IHE-Europe (new event)")
        parser.add_argument("--location", default="", help="e.g. Brussels (new event)")
        parser.add_argument("--start", type=dt.date.fromisoformat, help="YYYY-MM-DD (new event)")
        parser.add_argument("--end", type=dt.date.fromisoformat, help="YYYY-MM-DD (new event)")

    def handle(
        self, *args, file: Path, event: str, organiser: str, location: str, start, end, **options
    ):
        if not ConnectathonEvent.objects.filter(name=event).exists() and not (start and end):
            raise CommandError(f"{event!r} is a new event: give --start and --end.")
        try:
            # One transaction: a refused file leaves no new event behind either.
            with transaction.atomic(), file.open("rb") as stream:
                connectathon = connectathon_event_get_or_create(
                    name=event,
                    organiser=organiser,
                    location=location,
                    start_date=start,
                    end_date=end,
                    by=None,
                )
                summary = connectathon_import(
                    event=connectathon, stream=stream, name=file.name, by=None
                )
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from exc
        except ImportRefused as exc:
            for error in exc.errors:
                self.stderr.write(str(error))
            raise CommandError(str(exc)) from exc
        except ActionRefused as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Imported {summary}"))
