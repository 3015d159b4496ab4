"""Run one case action from the command line, through the same service as the pages and API.

manage.py case_action APP-2026-00042 grant --as officer_erin --reason "All passed"
manage.py case_action APP-2026-00042 assign-lab --as officer_erin --lab "Brussels Lab"
manage.py case_action APP-2026-00042 appeal-decision --as officer_frank --uphold --reason ..
"""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from cas import audit, permissions
from cas.actions import ACTIONS, ActionInput, get_action
from cas.errors import ActionRefused
from cas.models import Application, Organisation


class Command(BaseCommand):
    help = "Run a case action (submit, grant, withdraw, ...) as a user; prints the new state."

    def add_arguments(self, parser) -> None:
        parser.add_argument("reference", help="The case reference, e.g. APP-2026-00042")
        parser.add_argument("action", help="One of: " + ", ".join(ACTIONS))
        parser.add_argument(
            "--as", dest="username", required=True, help="Act as this user (their rights apply)"
        )
        parser.add_argument(
            "--reason",
            "--message",
            "--comments",
            "--note",
            dest="text",
            default="",
            help="The reason, message, comments or note the action takes",
        )
        parser.add_argument("--lab", help="assign-lab: the name of the lab to assign")
        parser.add_argument(
            "--reduce-scope",
            action="store_true",
            help="grant: grant only the AIPOs that passed",
        )
        outcome = parser.add_mutually_exclusive_group()
        outcome.add_argument("--uphold", action="store_const", const=True, dest="uphold")
        outcome.add_argument("--dismiss", action="store_const", const=False, dest="uphold")

    def handle(self, *args, **options) -> None:
        try:
            action = get_action(options["action"])
        except ActionRefused as exc:
            raise CommandError(exc.message) from None
        misplaced = [
            flag
            for flag, given, applies in (
                ("--lab", options["lab"] is not None, action.slug == "assign-lab"),
                ("--reduce-scope", options["reduce_scope"], action.slug == "grant"),
                (
                    "--uphold/--dismiss",
                    options["uphold"] is not None,
                    action.slug == "appeal-decision",
                ),
            )
            if given and not applies
        ]
        if misplaced:
            raise CommandError(f"{', '.join(misplaced)} does not apply to {action.slug}.")

        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"There is no user {options['username']!r}.")
        application = self._case_for(user, options["reference"])
        given = ActionInput(
            text=options["text"],
            lab=self._lab(options["lab"]) if options["lab"] is not None else None,
            reduce_scope=options["reduce_scope"],
            uphold=options["uphold"],
        )
        # The audit entry says the change came from the command line.
        token = audit.current_request_id.set(f"cli-{uuid.uuid4().hex[:16]}")
        try:
            updated = action.run(application, user, given)
        except ActionRefused as exc:
            raise CommandError(exc.message) from None
        finally:
            audit.current_request_id.reset(token)
        self.stdout.write(
            self.style.SUCCESS(
                f"{updated.reference}: {updated.get_state_display().lower()} ({updated.state})"
            )
        )

    def _case_for(self, user, reference: str) -> Application:
        """Only a case the user may see; a foreign one reads as missing, and is logged."""
        application = Application.objects.visible_to(user).filter(reference=reference).first()
        if application is None:
            foreign = Application.objects.filter(reference=reference).first()
            if foreign is not None:
                permissions.log.warning(
                    "user %s was refused foreign application %s (command line)",
                    user.pk,
                    foreign.pk,
                )
            raise CommandError(f"No application {reference} that {user.get_username()} can see.")
        return application

    def _lab(self, name: str) -> Organisation:
        labs = Organisation.objects.filter(kind=Organisation.Kind.LAB)
        lab = labs.filter(name__iexact=name.strip()).first()
        if lab is None:
            known = ", ".join(labs.values_list("name", flat=True)) or "none"
            raise CommandError(f"There is no test laboratory named {name!r} (labs: {known}).")
        return lab
