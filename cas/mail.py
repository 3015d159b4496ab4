"""Mail to the people who must act next: rendered from templates, sent after commit."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction

from cas.models import Membership, Organisation


def member_emails(
    organisation: Organisation | None, roles: Iterable[str] | None = None
) -> list[str]:
    if organisation is None:
        return []
    memberships = Membership.objects.filter(organisation=organisation, user__is_active=True)
    if roles is not None:
        memberships = memberships.filter(role__in=list(roles))
    return sorted({e for e in memberships.values_list("user__email", flat=True) if e})


def officer_emails() -> list[str]:
    users = get_user_model().objects.filter(
        is_active=True, memberships__role=Membership.Role.SCHEME_OFFICER
    )
    return sorted({e for e in users.values_list("email", flat=True) if e})


def notify(
    *, template: str, to: Iterable[str], context: dict, headers: dict[str, str] | None = None
) -> None:
    """Queue `templates/mail/<template>.{subject,body}.txt` for each recipient on commit.

    The context and the extra mail `headers` (e.g. List-Unsubscribe) must be
    JSON-serialisable (they travel through the broker): pass strings.
    """
    recipients = sorted({address for address in to if address})
    if not recipients:
        return
    from cas.tasks import send_templated_mail

    extra = {"headers": dict(headers)} if headers else {}
    transaction.on_commit(lambda: send_templated_mail.delay(template, recipients, context, **extra))
