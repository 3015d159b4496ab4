"""The page a QR code opens checks the signed token in Chromium (WebCrypto Ed25519) against
the published keys, then shows the live status from the public API.

Certificates and tokens are made before Chromium starts (pyHanko's asyncio.run and
Playwright's loop do not mix in one thread).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from certificates import lifecycle, signing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(os.environ.get("OPENCAS_VERIFY_SCREENSHOT", "/tmp/verify.png"))


def open_qr(page, base_url: str, token: str) -> tuple[str, str, list[str]]:
    """Open the QR address; return both verdicts and the requests the page made."""
    requests: list[str] = []
    page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
    page.goto(f"{base_url}/verify/qr#{token}")
    page.wait_for_selector("#status-verdict[data-code], #status-text:has-text('could not be')")
    return page.inner_text("#signature-verdict"), page.inner_text("#status-verdict"), requests


def test_the_qr_page_verifies_the_signature_in_the_browser_then_shows_the_live_status(
    live_server, certified, open_page
):
    page = open_page()
    signature, status, requests = open_qr(page, live_server.url, certified.jws)
    assert "Valid: the QR code's signed payload is intact" in signature
    assert "checked in this browser" in signature
    assert page.get_attribute("#signature-verdict", "data-code") == "valid"
    assert page.inner_text("dd[data-field=num]") == certified.number
    assert page.inner_text("dd[data-field=ven]") == certified.content["vendor_name"]
    assert page.inner_text("dd[data-field=vun]") == certified.valid_until.isoformat()
    assert "Active: since" in status
    # The browser did the check: it fetched the keys and asked the server only for the status.
    assert f"GET {live_server.url}/.well-known/jwks.json" in requests
    assert f"GET {live_server.url}/api/verify/{certified.number}/" in requests
    assert not any(r.startswith("POST") for r in requests)
    page.screenshot(path=str(SCREENSHOT.with_name("verify-qr.png")), full_page=True)


def test_the_qr_page_says_a_tampered_token_has_a_bad_signature(live_server, certified, open_page):
    header, payload, sig = certified.jws.split(".")
    forged = f"{header}.{payload[:-2]}AA.{sig}"
    page = open_page()
    signature, status, requests = open_qr(page, live_server.url, forged)
    assert "Not valid: the signature does not match the payload" in signature
    assert page.get_attribute("#signature-verdict", "data-code") == "bad_signature"
    assert "the QR code could not be trusted" in status
    assert not any("/api/verify/" in r for r in requests)


def test_the_qr_page_shows_a_suspension_as_the_live_status(
    live_server, certified, officer_erin, open_page
):
    lifecycle.certificate_suspend(
        certificate=certified, by=officer_erin, reason="Open nonconformity NC-12"
    )
    page = open_page()
    signature, status, _requests = open_qr(page, live_server.url, certified.jws)
    assert "Valid" in signature
    assert "Suspended: since" in status and "Open nonconformity NC-12" in status
    assert page.get_attribute("#status-verdict", "data-code") == "suspended"


def test_the_qr_page_says_a_token_from_an_unknown_key_is_not_valid(
    live_server, certified, open_page
):
    stranger = signing.generate_ed25519_private_pem()
    forged = signing.sign_jws(
        payload={"num": certified.number, "ven": "Forgers Ltd"},
        private_pem=stranger,
        kid="jws-20260101-forged00",
    )
    page = open_page()
    signature, status, _requests = open_qr(page, live_server.url, forged)
    assert "signed with an unknown key (jws-20260101-forged00)" in signature
    assert "could not be trusted" in status


def test_the_qr_page_says_an_unreadable_code_is_unreadable(live_server, certified, open_page):
    page = open_page()
    signature, _status, _requests = open_qr(page, live_server.url, "not-a-signed-token")
    assert "does not contain a readable signed payload" in signature
    assert page.get_attribute("#signature-verdict", "data-code") == "malformed"


def test_the_qr_page_asks_the_server_when_the_browser_lacks_ed25519(
    live_server, certified, open_page
):
    page = open_page()
    page.add_init_script(
        """crypto.subtle.importKey = () =>
             Promise.reject(new DOMException("Ed25519 is not supported", "NotSupportedError"));"""
    )
    signature, status, requests = open_qr(page, live_server.url, certified.jws)
    assert "Valid" in signature and "checked by the server" in signature
    assert "Active" in status
    assert f"POST {live_server.url}/api/verify/" in requests
