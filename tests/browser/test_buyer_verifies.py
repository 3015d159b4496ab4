"""Buyers and vendors in a real Chromium, against a live server.

conftest.py skips these tests when Chromium is missing, and fails them instead when
OPENCAS_REQUIRE_SERVICES=1. CHROMIUM_PATH overrides /usr/bin/chromium.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from support import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(os.environ.get("OPENCAS_VERIFY_SCREENSHOT", "/tmp/verify.png"))
MODIFIED = re.compile(r"changed after it was signed|modified|altered", re.I)


def download_pdf_as_buyer(page, base_url: str, certificate, tmp_path: Path) -> Path:
    """Registry -> search by vendor -> the certificate -> its signed PDF."""
    vendor = certificate.content["vendor_name"]
    page.goto(base_url + "/registry/")
    page.fill("input[name=q]", vendor)
    page.click("form button[type=submit]:has-text('Search')")
    page.wait_for_url(re.compile(r"/registry/\?q="))
    page.click(f"a:has-text('{certificate.number}')")
    page.wait_for_url(f"**/certificates/{certificate.number}/")
    body = page.inner_text("main")
    assert f"Certificate {certificate.number}" in body
    assert "Active" in body
    assert "HelixEHR" in body and vendor in body

    with page.expect_download() as download_info:
        page.click("text=Download the signed PDF")
    download = download_info.value
    assert download.suggested_filename == f"{certificate.number}.pdf"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert path.read_bytes().startswith(b"%PDF-")
    return path


def verify_upload(page, base_url: str, pdf: Path) -> tuple[str, str]:
    page.goto(base_url + "/verify/")
    page.set_input_files("input[name=pdf]", str(pdf))
    page.click("form button[type=submit]:has-text('Verify')")
    page.wait_for_selector("#signature-verdict")
    return page.inner_text("#signature-verdict"), page.inner_text("#status-verdict")


def tampered_copy(original: Path, vendor: str) -> Path:
    """Change one byte inside the signed byte range."""
    data = bytearray(original.read_bytes())
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", data)
    assert match, "the PDF has no signature byte range"
    first_end = int(match.group(2))
    at = bytes(data).find(vendor.encode(), 0, first_end)
    if at >= 0:  # the vendor's name is there uncompressed: misspell it
        data[at] = ord("J") if data[at] != ord("J") else ord("K")
    else:  # compressed content: flip a bit in the middle of the first signed range
        data[first_end // 2] ^= 0x01
    tampered = original.with_name("tampered-" + original.name)
    tampered.write_bytes(bytes(data))
    return tampered


def test_a_buyer_finds_downloads_and_verifies_a_certificate(
    live_server, certified, open_page, tmp_path
):
    page = open_page()
    pdf = download_pdf_as_buyer(page, live_server.url, certified, tmp_path)

    signature, status = verify_upload(page, live_server.url, pdf)
    assert "Valid" in signature and "Not valid" not in signature, signature
    assert "Active: since" in status and "valid from" in status, status
    assert certified.number in status
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_a_buyer_is_told_a_modified_pdf_is_not_valid(live_server, certified, open_page, tmp_path):
    page = open_page()
    pdf = download_pdf_as_buyer(page, live_server.url, certified, tmp_path)
    tampered = tampered_copy(pdf, certified.content["vendor_name"])

    signature, status = verify_upload(page, live_server.url, tampered)
    assert "Not valid" in signature, signature
    assert MODIFIED.search(signature), signature
    # The status names the real certificate without vouching for the altered copy.
    assert f"Claims to be {certified.number}" in status, status
    assert "not a faithful copy" in status, status
    page.screenshot(path=str(SCREENSHOT.with_name("verify-tampered.png")), full_page=True)


def test_a_vendor_registers_a_product_and_adds_a_version(live_server, vendor_alice, open_page):
    page = open_page()
    log_in(page, live_server.url, "vendor_alice")

    page.goto(live_server.url + "/products/")
    page.fill("input[name=name]", "HelixEHR Cloud")
    page.fill("textarea[name=description]", "Hosted edition")
    page.click("button:has-text('Register product')")
    page.wait_for_url(re.compile(r"/products/\d+/$"))
    assert "Product HelixEHR Cloud registered." in page.inner_text(".messages")
    assert page.inner_text("h1") == "HelixEHR Cloud"

    page.fill("input[name=version]", "2.0.1")
    page.click("button:has-text('Add version')")
    page.wait_for_selector(".messages >> text=Version 2.0.1 added.")
    assert "2.0.1" in page.inner_text(".card")

    page.goto(live_server.url + "/products/")
    row = page.inner_text("tr:has-text('HelixEHR Cloud')")
    assert "2.0.1" in row and "Helix Health Systems" in row
