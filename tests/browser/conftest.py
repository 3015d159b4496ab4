"""Chromium for the browser tests: one browser per test, one context per person."""

from __future__ import annotations

import os

import pytest
from django.db import connections

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture
def open_page(monkeypatch):
    """Start Chromium on the first call and return a page in a fresh context (a new person).

    Call it only after the test's data is built: pyHanko signs with asyncio.run(), which
    refuses to run while Playwright's event loop runs in the same thread, so certificates
    must be issued before the browser starts.
    """
    if not os.path.exists(CHROMIUM_PATH):  # conftest turns this into a failure in CI
        pytest.skip(f"needs Chromium at {CHROMIUM_PATH}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django would then refuse ORM
    # calls made from the test itself ("You cannot call this from an async context").
    # Django reads this at each call, so it is set for these tests only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    started: list = []
    browsers: list = []

    def open_page():
        if not browsers:
            playwright = sync_playwright().start()
            started.append(playwright.stop)
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS, headless=True
            )
            started.append(browser.close)
            browsers.append(browser)
        context = browsers[0].new_context(
            accept_downloads=True, viewport={"width": 1280, "height": 900}
        )
        started.append(context.close)
        context.set_default_timeout(15_000)
        return context.new_page()

    yield open_page
    # ORM calls made while Playwright's loop runs get their own connection; close it while
    # that loop still runs, or PostgreSQL cannot drop the test database at the end.
    connections.close_all()
    for stop in reversed(started):
        stop()


@pytest.fixture
def certified(make_application, lab, assessor_carol, reviewer_dave, officer_erin):
    """A granted case's certificate, issued on commit (transaction=True, eager Celery)."""
    application = make_application(
        "certified",
        lab_org=lab,
        recorder=assessor_carol,
        reviewer=reviewer_dave,
        officer=officer_erin,
    )
    certificate = application.certificates.get()
    assert certificate.status == "active"
    return certificate
