"""A small fixed-window rate limiter per client address, on the Django cache.

Counts live in the cache so that, with a shared cache (Redis through CACHE_URL / REDIS_URL),
every gunicorn worker and every web server sees the same count; with the default local-memory
cache each process counts on its own (fine for the embedded mode, too lenient behind several
workers). The count is kept atomic by cache.add (creates the window's counter once) and
cache.incr (atomic on Redis and, under its lock, on local memory).

    @rate_limited("lookup")            # a page: plain-text 429
    @rate_limited("lookup", json=True)  # an API view: {"detail": ...} 429

Every route that answers for one certificate number (the verify page and API, the
certificate page, its PDF, its FHIR view and its registry record) counts in the one "lookup"
scope at VERIFY_RATE, so numbers cannot be enumerated faster than that rate whichever route
is used. Scheme officers, logged in, are exempt there: they manage certificates through
these pages all day, and their account is known.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count} requests per {self.seconds} seconds"


def parse_rate(text: str) -> Rate | None:
    """ "60/minute", "1000/hour", "10/5minute"; "" / "off" / "0" means no limit."""
    text = (text or "").strip().lower()
    if text in {"", "off", "none", "0"}:
        return None
    match = _RATE.match(text)
    if match is None:
        raise ValueError(f"Bad rate {text!r}: write it as 60/minute, 1000/hour or 5/second.")
    count, multiple, period = match.groups()
    return Rate(count=int(count), seconds=int(multiple or 1) * PERIODS[period])


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, or, behind N trusted proxies (RATE_LIMIT_TRUSTED_PROXIES), the address
    the outermost of them saw. X-Forwarded-For is never trusted by default: anyone can
    send one, and a client choosing its own address would have no limit at all."""
    proxies = settings.RATE_LIMIT_TRUSTED_PROXIES
    address = request.META.get("REMOTE_ADDR", "") or "unknown"
    if proxies > 0:
        forwarded = [
            a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()
        ]
        # Each proxy appends the address it received the request from; entries further
        # left than our own proxies wrote are the client's to invent.
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    return address[:64]


def retry_after(*, scope: str, client: str, rate: Rate) -> int | None:
    """Count one request; None if it is within the limit, else the seconds until the
    window ends (for Retry-After)."""
    now = time.time()
    window = int(now // rate.seconds)
    key = f"ratelimit:{scope}:{client}:{rate.seconds}:{window}"
    cache.add(key, 0, timeout=rate.seconds + 1)
    try:
        count = cache.incr(key)
    except ValueError:
        # The counter expired between add and incr: this request opens a new one.
        cache.add(key, 1, timeout=rate.seconds + 1)
        count = 1
    if count <= rate.count:
        return None
    return max(1, int((window + 1) * rate.seconds - now + 0.999))


TOO_MANY = {
    "lookup": "Too many certificate look-ups (verifications, certificate pages and "
    "downloads) from your address.",
    "token": "Too many token requests from your address or for this username.",
}


def limit_message(wait: int, *, scope: str = "lookup") -> str:
    return f"{TOO_MANY.get(scope, 'Too many requests.')} Please wait {wait} seconds and try again."


def check_rate_setting(setting: str) -> None:
    """A bad rate in the environment stops the start-up, not every request."""
    try:
        parse_rate(getattr(settings, setting))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{setting} (OPENCAS_{setting}): {exc}") from exc


def _exempt_officer(request: HttpRequest) -> bool:
    # Without a session cookie the visitor is anonymous: no need to load a user (the
    # by-number verification stays one query).
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    from cas.permissions import is_officer

    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and is_officer(user))


def rate_limited(
    scope: str,
    *,
    json: bool = False,
    setting: str = "VERIFY_RATE",
    body: Callable[[str], dict] | None = None,
) -> Callable:
    """Refuse with 429 (and Retry-After) once a client exceeds the rate in `setting`. The
    setting is read on every request, so tests and the bench can change it. `body` builds
    the JSON body from the message (e.g. a FHIR OperationOutcome); json=True gives
    {"detail": message}. Logged-in scheme officers are not counted in the "lookup" scope."""

    def decorate(view: Callable) -> Callable:
        check_rate_setting(setting)

        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            rate = parse_rate(getattr(settings, setting))
            if rate is None or (scope == "lookup" and _exempt_officer(request)):
                return view(request, *args, **kwargs)
            wait = retry_after(scope=scope, client=client_address(request), rate=rate)
            if wait is None:
                return view(request, *args, **kwargs)
            return too_many(wait, scope=scope, json=json, body=body)

        return wrapped

    return decorate


def too_many(
    wait: int, *, scope: str, json: bool = False, body: Callable[[str], dict] | None = None
) -> HttpResponse:
    """The 429 answer: plain text for a page, JSON for an API, with Retry-After."""
    message = limit_message(wait, scope=scope)
    if body is not None:
        response: HttpResponse = JsonResponse(body(message), status=429)
    elif json:
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = HttpResponse(
            message + "\n", status=429, content_type="text/plain; charset=utf-8"
        )
    response["Retry-After"] = str(wait)
    return response
