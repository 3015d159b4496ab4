from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from cas.catalogue import read_catalogue
from cas.models import AIPO, Actor, Domain, Profile, ProfileOption


class Command(BaseCommand):
    help = "Load (or refresh) the IHE catalogue from the shipped CSV or a given file."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--file", type=Path, help="catalogue CSV (default: shipped copy)")

    def handle(self, *args, file: Path | None = None, **options) -> None:
        try:
            rows = read_catalogue(path=file)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        summary = catalogue_load(rows)
        self.stdout.write(self.style.SUCCESS(summary))


def catalogue_load(rows) -> str:
    """Upsert every row; existing ids stay, so claims and results keep pointing at them."""
    with transaction.atomic():
        domains = {d.keyword: d for d in Domain.objects.all()}
        profiles = {p.keyword: p for p in Profile.objects.all()}
        actors = {a.keyword: a for a in Actor.objects.all()}
        options = {o.keyword: o for o in ProfileOption.objects.all()}
        existing = set(AIPO.objects.values_list("profile_id", "actor_id", "option_id"))
        created = 0
        for row in rows:
            domain = domains.get(row.domain_keyword)
            if domain is None:
                domain = domains[row.domain_keyword] = Domain.objects.create(
                    keyword=row.domain_keyword, name=row.domain_name
                )
            profile = profiles.get(row.profile_keyword)
            if profile is None:
                profile = profiles[row.profile_keyword] = Profile.objects.create(
                    keyword=row.profile_keyword,
                    name=row.profile_name,
                    status=row.profile_status,
                    tf_revision=row.tf_revision,
                    domain=domain,
                )
            actor = actors.get(row.actor_keyword)
            if actor is None:
                actor = actors[row.actor_keyword] = Actor.objects.create(
                    keyword=row.actor_keyword, name=row.actor_name
                )
            option = options.get(row.option_keyword)
            if option is None:
                option = options[row.option_keyword] = ProfileOption.objects.create(
                    keyword=row.option_keyword, name=row.option_name, reference=row.option_reference
                )
            key = (profile.pk, actor.pk, option.pk)
            if key not in existing:
                AIPO.objects.create(profile=profile, actor=actor, option=option)
                existing.add(key)
                created += 1
    return (
        f"Catalogue: {len(rows)} rows, {created} new AIPOs; {AIPO.objects.count()} AIPOs, "
        f"{Profile.objects.count()} profiles, {Actor.objects.count()} actors, "
        f"{ProfileOption.objects.count()} options in {Domain.objects.count()} domains."
    )
