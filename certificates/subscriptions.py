"""Buyers following a certificate by e-mail: double opt-in, one-click unsubscribe.

A request mails a confirmation link (or, to an address that already follows, a reminder with
its unsubscribe link) and nothing else; only a confirmed address that has not unsubscribed is
told of status changes. Requests are answered and limited alike whether or not the address
already follows the certificate, so the form reveals nobody's address.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from cas.errors import ActionRefused
from cas.mail import notify
from certificates import ratelimit
from certificates.models import Certificate, CertificateSubscription


def _setting(name: str, default: int) -> int:
    # Read at each call, so that the settings (environment) and tests can change them.
    return int(getattr(settings, name, default))


def confirmation_days() -> int:
    return _setting("CERTIFICATE_SUBSCRIPTION_CONFIRMATION_DAYS", 7)


REQUEST_ANSWER = (
    "Thank you. If {email} can receive mail, a message with a confirmation link is on its way "
    "to it. Nothing more is sent until the link is used; it works for {days} days."
)


class SubscriptionRefused(ActionRefused):
    pass


class TooManyRequests(ActionRefused):
    status_code = 429


class LinkNotValid(ActionRefused):
    status_code = 404


class LinkExpired(ActionRefused):
    status_code = 410


@dataclass(frozen=True)
class LinkState:
    """What a confirm or unsubscribe link points at, for its page."""

    subscription: CertificateSubscription
    expires_at: dt.datetime


def _clean_email(email: str) -> str:
    email = (email or "").replace("\x00", "").strip().lower()
    if not email:
        raise SubscriptionRefused("Give the e-mail address to send the updates to.")
    try:
        validate_email(email)
    except ValidationError:
        raise SubscriptionRefused(
            f"'{email[:80]}' is not an e-mail address: check it and try again."
        ) from None
    return email


def _link(name: str, token: str) -> str:
    return settings.SITE_URL + reverse(name, kwargs={"token": token})


def _certificate_context(certificate: Certificate) -> dict[str, str]:
    content = certificate.content
    return {
        "number": certificate.number,
        "product": f"{content['product_name']} {content['product_version']}",
        "vendor": content["vendor_name"],
        "url": settings.SITE_URL + reverse("certificate_detail", args=[certificate.number]),
    }


def follow_rate() -> ratelimit.Rate | None:
    return ratelimit.parse_rate(getattr(settings, "CERTIFICATE_FOLLOW_RATE", "20/day"))


def follow_rate_check(*, certificate: Certificate, client: str) -> None:
    """Count one follow request of a client address for this certificate; TooManyRequests
    past CERTIFICATE_FOLLOW_RATE (default 20/day), so that one client cannot use up the
    certificate's daily allowance (CERTIFICATE_SUBSCRIPTION_MAX_PER_CERTIFICATE_PER_DAY) by
    cycling through addresses."""
    rate = follow_rate()
    if rate is None:
        return
    wait = ratelimit.retry_after(scope=f"follow:{certificate.pk}", client=client, rate=rate)
    if wait is not None:
        raise TooManyRequests(
            f"Too many requests to follow {certificate.number} from your network: try again "
            f"in {_duration(wait)}."
        )


def _duration(seconds: int) -> str:
    if seconds >= 3600:
        hours = round(seconds / 3600)
        return f"about {hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, round(seconds / 60))
    return f"about {minutes} minute{'s' if minutes != 1 else ''}"


def subscription_request(*, certificate: Certificate, email: str) -> str:
    """Mail a confirmation link to the address; returns the neutral message to show.

    An address that already follows the certificate is told so by mail (with its unsubscribe
    link); the page answers the same either way."""
    email = _clean_email(email)
    if certificate.status not in Certificate.LIVE_STATUSES:
        raise SubscriptionRefused(
            f"{certificate.number} is {certificate.get_status_display().lower()}: its status "
            "will not change any more, so there is nothing to follow."
        )
    now = timezone.now()
    day_ago = now - dt.timedelta(days=1)
    with transaction.atomic():
        # Serialise the requests of one certificate, so the daily limit holds under load.
        Certificate.objects.select_for_update().filter(pk=certificate.pk).first()
        # Every request counts and is answered alike, follower or not: a limit reached
        # only by strangers would tell who follows.
        recent = CertificateSubscription.objects.filter(
            created_at__gte=day_ago, confirmed_at__isnull=True
        )
        per_address = _setting("CERTIFICATE_SUBSCRIPTION_MAX_PER_ADDRESS_PER_DAY", 5)
        per_certificate = _setting("CERTIFICATE_SUBSCRIPTION_MAX_PER_CERTIFICATE_PER_DAY", 200)
        if recent.filter(email=email).count() >= per_address:
            raise TooManyRequests(
                "Too many confirmation requests for this address today: use a link already "
                "sent, or try again tomorrow."
            )
        if recent.filter(certificate=certificate).count() >= per_certificate:
            raise TooManyRequests(
                f"Too many people asked to follow {certificate.number} today: try again tomorrow."
            )
        following = (
            CertificateSubscription.objects.filter(
                certificate=certificate,
                email=email,
                confirmed_at__isnull=False,
                unsubscribed_at__isnull=True,
            )
            .order_by("confirmed_at")
            .first()
        )
        subscription = CertificateSubscription.objects.create(
            certificate=certificate,
            email=email,
            token=secrets.token_urlsafe(32),
            created_at=now,
        )
        context = {
            **_certificate_context(certificate),
            "days": str(confirmation_days()),
            "expires": f"{now + dt.timedelta(days=confirmation_days()):%Y-%m-%d %H:%M} UTC",
        }
        if following is not None:
            # Only the address's owner reads this: telling them is no leak.
            context["already_following"] = "yes"
            context["unsubscribe_url"] = _link("subscription_unsubscribe", following.token)
        else:
            context["confirm_url"] = _link("subscription_confirm", subscription.token)
        notify(template="certificate_subscription_confirm", to=[email], context=context)
    return REQUEST_ANSWER.format(email=email, days=confirmation_days())


# What secrets.token_urlsafe makes (URL-safe base64): anything else is no token of ours and
# never reaches the database (PostgreSQL refuses a NUL in a text, which was a 500).
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{20,64}")


def _find(token: str) -> CertificateSubscription:
    token = (token or "").strip()
    subscription = (
        CertificateSubscription.objects.select_related("certificate").filter(token=token).first()
        if TOKEN_PATTERN.fullmatch(token)
        else None
    )
    if subscription is None:
        raise LinkNotValid(
            "This link is not valid: it may have been copied incompletely. Use the link in the "
            "mail as it is, or ask again from the certificate's page."
        )
    return subscription


def _expires_at(subscription: CertificateSubscription) -> dt.datetime:
    return subscription.created_at + dt.timedelta(days=confirmation_days())


def subscription_for_confirmation(*, token: str) -> LinkState:
    """The subscription a confirmation link names, refused when unknown or expired."""
    subscription = _find(token)
    expires_at = _expires_at(subscription)
    if subscription.confirmed_at is None and timezone.now() >= expires_at:
        raise LinkExpired(
            f"This confirmation link expired on {expires_at:%Y-%m-%d}: links work for "
            f"{confirmation_days()} days. Ask again from the page of certificate "
            f"{subscription.certificate.number}."
        )
    return LinkState(subscription=subscription, expires_at=expires_at)


def subscription_confirm(*, token: str) -> CertificateSubscription:
    """Confirm the address; safe to run twice (a second confirmation changes nothing)."""
    subscription = subscription_for_confirmation(token=token).subscription
    with transaction.atomic():
        # Lock the subscription only: the certificate row belongs to status changes.
        locked = CertificateSubscription.objects.select_for_update().get(pk=subscription.pk)
        locked.certificate = subscription.certificate
        if locked.unsubscribed_at is not None:
            raise SubscriptionRefused(
                f"This address stopped following {locked.certificate.number} with this link. "
                "To follow it again, ask from the certificate's page."
            )
        if locked.confirmed_at is None:
            locked.confirmed_at = timezone.now()
            locked.save(update_fields=["confirmed_at"])
    return locked


def subscription_for_unsubscribe(*, token: str) -> CertificateSubscription:
    return _find(token)


def subscription_unsubscribe(*, token: str) -> CertificateSubscription:
    """Stop every mail about this certificate to this address (every row of it); idempotent."""
    subscription = _find(token)
    now = timezone.now()
    CertificateSubscription.objects.filter(
        certificate_id=subscription.certificate_id,
        email=subscription.email,
        unsubscribed_at__isnull=True,
    ).update(unsubscribed_at=now)
    subscription.refresh_from_db()
    return subscription


def subscribers_notify(*, certificate: Certificate, action: str, note: str = "") -> None:
    """Queue one mail per confirmed follower (each with its own unsubscribe link), on commit.

    Called inside the transaction that changes the certificate: a rolled-back change mails
    nobody."""
    followers: dict[str, str] = {}
    rows = (
        CertificateSubscription.objects.filter(
            certificate=certificate, confirmed_at__isnull=False, unsubscribed_at__isnull=True
        )
        .order_by("email", "confirmed_at")
        .values_list("email", "token")
    )
    for email, token in rows:
        followers.setdefault(email, token)  # one mail per address, even if confirmed twice
    if not followers:
        return
    # A re-issue keeps the status: its date is today's, not that of the last status change.
    changed_at = (
        timezone.now() if action == "reissue" else certificate.status_changed_at or timezone.now()
    )
    context = {
        **_certificate_context(certificate),
        "action": action,
        "status": certificate.get_status_display(),
        "date": f"{timezone.localtime(changed_at):%Y-%m-%d}",
        "reason": certificate.status_reason if action != "reissue" else "",
        "note": note,
        "replacement": certificate.superseded_by.number if certificate.superseded_by else "",
    }
    for email, token in followers.items():
        unsubscribe_url = _link("subscription_unsubscribe", token)
        notify(
            template="certificate_subscriber_status",
            to=[email],
            context={**context, "unsubscribe_url": unsubscribe_url},
            # One-click unsubscribe from the mail client (RFC 8058): it POSTs to the link.
            headers={
                "List-Unsubscribe": f"<{unsubscribe_url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
