"""A small fixed-window rate limiter per client address, on the Django cache.

Counts live in the cache so that, with a shared cache (Redis through CACHE_URL / REDIS_URL),
every gunicorn worker and every web server sees the same count; with the default local-memory
cache each process counts on its own (fine for the embedded mode, too lenient behind several
workers). The count is kept atomic by cache.add (creates the window's counter once) and
cache.incr (atomic on Redis and, under its lock, on local memory).

    @rate_limited("verify")            # a page: plain-text 429
    @rate_limited("verify", json=True)  # an API view: {"detail": ...} 429
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


def limit_message(wait: int) -> str:
    return (
        "Too many verification requests from your address. "
        f"Please wait {wait} seconds and try again."
    )


def rate_limited(scope: str, *, json: bool = False, setting: str = "VERIFY_RATE") -> Callable:
    """Refuse with 429 (and Retry-After) once a client exceeds the rate in `setting`. The
    setting is read on every request, so tests and the bench can change it."""

    def decorate(view: Callable) -> Callable:
        try:
            # A bad rate in the environment stops the start-up, not every verification.
            parse_rate(getattr(settings, setting))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{setting} (OPENCAS_VERIFY_RATE): {exc}") from exc

        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            rate = parse_rate(getattr(settings, setting))
            wait = (
                retry_after(scope=scope, client=client_address(request), rate=rate)
                if rate
                else None
            )
            if wait is None:
                return view(request, *args, **kwargs)
            message = limit_message(wait)
            if json:
                response: HttpResponse = JsonResponse({"detail": message}, status=429)
            else:
                response = HttpResponse(
                    message + "\n", status=429, content_type="text/plain; charset=utf-8"
                )
            response["Retry-After"] = str(wait)
            return response

        return wrapped

    return decorate
