"""The case transitions by name, for the interfaces that take an action's name.

The REST API, `manage.py case_action` and the admin actions look an action up here and
call its service; the rule of who may act stays in cas/permissions.py and the state check
in the service. `allowed_actions` answers "what may this user do now" from the same
predicates, so an API client sees the actions the case page would offer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import rules
from django.utils import timezone

from cas import permissions, services
from cas.errors import ActionRefused
from cas.models import Application, Organisation

State = Application.State


@dataclass(frozen=True)
class ActionInput:
    """What a person adds to an action: a reason or message, a lab, the grant's scope."""

    text: str = ""
    lab: Organisation | None = None
    reduce_scope: bool = False
    # For the appeal decision only: True upholds, False dismisses, None is not chosen yet.
    uphold: bool | None = None


def _assign_lab(application: Application, by, given: ActionInput) -> Application:
    if given.lab is None:
        raise ActionRefused("Say which lab to assign.")
    return services.application_assign_lab(
        application=application, lab=given.lab, by=by, note=given.text
    )


def _decide_appeal(application: Application, by, given: ActionInput) -> Application:
    if given.uphold is None:
        raise ActionRefused("Choose whether to uphold or dismiss the appeal.")
    return services.application_decide_appeal(
        application=application, by=by, uphold=given.uphold, reason=given.text
    )


def _appeal_window_open(application: Application) -> bool:
    deadline = application.appeal_deadline()
    return deadline is None or timezone.now() <= deadline


@dataclass(frozen=True)
class CaseAction:
    slug: str
    label: str
    sources: tuple[str, ...]
    allowed: rules.Predicate
    run: Callable[[Application, object, ActionInput], Application]
    # What `text` means for this action, and whether the service refuses it empty.
    text_name: str = "reason"
    text_required: bool = False

    def possible_for(self, user, application: Application) -> bool:
        if application.state not in self.sources:
            return False
        if not user.is_authenticated or permissions.declared_conflict.test(user, application):
            return False
        if self.slug == "appeal" and (
            application.appeal_already_decided() or not _appeal_window_open(application)
        ):
            return False
        return bool(self.allowed.test(user, application))


ACTIONS: dict[str, CaseAction] = {
    action.slug: action
    for action in [
        CaseAction(
            "submit",
            "Submit",
            (State.DRAFT,),
            permissions.can_submit,
            lambda a, by, g: services.application_submit(application=a, by=by, note=g.text),
            text_name="note",
        ),
        CaseAction(
            "request-info",
            "Request information",
            (State.SUBMITTED,),
            permissions.can_request_info,
            lambda a, by, g: services.application_request_info(
                application=a, by=by, message=g.text
            ),
            text_name="message",
            text_required=True,
        ),
        CaseAction(
            "resubmit",
            "Answer and resubmit",
            (State.INFO_REQUESTED,),
            permissions.can_resubmit,
            lambda a, by, g: services.application_resubmit(application=a, by=by, message=g.text),
            text_name="message",
            text_required=True,
        ),
        CaseAction(
            "assign-lab",
            "Assign a lab",
            (State.SUBMITTED,),
            permissions.can_assign_lab,
            _assign_lab,
            text_name="note",
        ),
        CaseAction(
            "complete-assessment",
            "Complete the assessment",
            (State.IN_ASSESSMENT,),
            permissions.can_complete_assessment,
            lambda a, by, g: services.application_complete_assessment(application=a, by=by),
        ),
        CaseAction(
            "return-for-rework",
            "Return for rework",
            (State.IN_REVIEW,),
            permissions.can_return_for_rework,
            lambda a, by, g: services.application_return_for_rework(
                application=a, by=by, comments=g.text
            ),
            text_name="comments",
            text_required=True,
        ),
        CaseAction(
            "approve-report",
            "Approve the report",
            (State.IN_REVIEW,),
            permissions.can_approve_report,
            lambda a, by, g: services.application_approve_report(application=a, by=by, note=g.text),
            text_name="note",
        ),
        CaseAction(
            "grant",
            "Grant",
            (State.DECISION_PENDING,),
            permissions.can_decide,
            lambda a, by, g: services.application_grant(
                application=a, by=by, reason=g.text, reduce_scope=g.reduce_scope
            ),
        ),
        CaseAction(
            "refuse",
            "Refuse",
            (State.DECISION_PENDING,),
            permissions.can_decide,
            lambda a, by, g: services.application_refuse(application=a, by=by, reason=g.text),
            text_required=True,
        ),
        CaseAction(
            "appeal",
            "Appeal",
            (State.REFUSED,),
            permissions.can_appeal,
            lambda a, by, g: services.application_appeal(application=a, by=by, reason=g.text),
            text_required=True,
        ),
        CaseAction(
            "appeal-decision",
            "Decide the appeal",
            (State.APPEALED,),
            permissions.can_decide_appeal,
            _decide_appeal,
            text_required=True,
        ),
        CaseAction(
            "withdraw",
            "Withdraw",
            tuple(Application.BEFORE_DECISION),
            permissions.can_withdraw,
            lambda a, by, g: services.application_withdraw(application=a, by=by, reason=g.text),
        ),
    ]
}


def get_action(name: str) -> CaseAction:
    """The action by its slug; underscores are accepted too (`request_info`)."""
    slug = name.strip().lower().replace("_", "-")
    try:
        return ACTIONS[slug]
    except KeyError:
        raise ActionRefused(
            f"{name!r} is not a case action; use one of: {', '.join(ACTIONS)}."
        ) from None


def allowed_actions(user, application: Application) -> list[str]:
    """The slugs of the actions this user may take on the case now."""
    return [slug for slug, action in ACTIONS.items() if action.possible_for(user, application)]
