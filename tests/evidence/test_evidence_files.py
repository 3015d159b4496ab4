"""Evidence files: what a vendor may upload, how it is stored, and who may download it."""

from __future__ import annotations

import hashlib
import io
import random
import stat
import struct
import zipfile

import pytest
from django.core.files.storage import default_storage
from support import client_for, page_text

from evidence.models import EvidenceBlob, EvidenceFile

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def post_file(client, application, data: bytes, name: str, **extra):
    return client.post(
        f"/applications/{application.pk}/evidence/", {"file": named(data, name), **extra}
    )


def assert_nothing_stored(application) -> None:
    assert not EvidenceFile.objects.filter(application=application).exists()
    assert not EvidenceBlob.objects.exists()
    assert not default_storage.exists("evidence") or not default_storage.listdir("evidence")[0]


def zip_bytes(entries: list[tuple[str, bytes]], *, symlink: str | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return out.getvalue()


def test_a_vendor_uploads_a_pdf_linked_to_a_claimed_aipo(make_application, vendor_alice):
    application = make_application("draft")
    claimed = application.claimed_aipos.first()
    response = post_file(
        client_for(vendor_alice), application, PDF, "conformance.pdf", aipos=[claimed.pk]
    )
    assert response.status_code == 302
    evidence = EvidenceFile.objects.get()
    assert list(evidence.aipos.all()) == [claimed]
    digest = hashlib.sha256(PDF).hexdigest()
    assert evidence.blob.sha256 == digest
    assert evidence.blob.storage_name == f"evidence/{digest[:2]}/{digest}"
    with default_storage.open(evidence.blob.storage_name) as stored:
        assert stored.read() == PDF


def test_the_same_bytes_are_stored_once(make_application, vendor_alice):
    first = make_application("draft")
    second = make_application("draft", version="5.2")
    client = client_for(vendor_alice)
    post_file(client, first, PDF, "a.pdf")
    post_file(client, second, PDF, "b.pdf")
    assert EvidenceFile.objects.count() == 2
    assert EvidenceBlob.objects.count() == 1
    response = post_file(client, first, PDF, "again.pdf")
    assert response.status_code == 400
    assert "already attached" in page_text(response) and "'a.pdf'" in page_text(response)
    assert EvidenceFile.objects.count() == 2


def test_it_refuses_a_file_over_the_limit_with_413_naming_it(
    make_application, vendor_alice, settings
):
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1000
    application = make_application("draft")
    response = post_file(client_for(vendor_alice), application, PDF + b"0" * 1000, "big.pdf")
    assert response.status_code == 413
    assert "the limit is 1000 bytes (1,000 bytes)" in page_text(response)
    assert_nothing_stored(application)


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"MZ\x90\x00binary", "tool.exe", "Files of type .exe are not accepted"),
        (b"#!/bin/sh\nrm -rf /\n", "script.sh", "Files of type .sh are not accepted"),
        (b"no extension at all", "README", "Files of type no extension are not accepted"),
        (PDF, "report.png", "The file name says PNG image (.png) but its content is PDF"),
        (PNG, "report.pdf", "The file name says PDF (.pdf) but its content is PNG image"),
        (b"MZ\x90\x00\xff\xfebinary", "report.pdf", "its bytes are not PDF"),
        (b"{not json", "result.json", "its content is plain text or log"),
        (b"\xff\xfe\x00l\x00o\x00g", "server.log", "its bytes are not plain text or log"),
    ],
)
def test_it_refuses_a_type_the_bytes_and_name_do_not_agree_on(
    make_application, vendor_alice, data, name, message
):
    application = make_application("draft")
    response = post_file(client_for(vendor_alice), application, data, name)
    assert response.status_code == 400
    assert message in page_text(response)
    assert_nothing_stored(application)


def test_it_accepts_each_allowed_type(make_application, vendor_alice):
    application = make_application("draft")
    client = client_for(vendor_alice)
    files = {
        "a.pdf": PDF,
        "b.json": b'{"ok": true}',
        "c.xml": b"<?xml version='1.0'?><r/>",
        "d.txt": b"plain text",
        "e.log": b"2026-03-25 INFO started\n",
        "f.png": PNG,
        "g.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 20,
        "h.zip": zip_bytes([("logs/run.log", b"ok\n")]),
    }
    for name, data in files.items():
        assert post_file(client, application, data, name).status_code == 302, name
    kinds = dict(EvidenceFile.objects.values_list("original_name", "blob__kind"))
    assert kinds == {
        "a.pdf": "pdf",
        "b.json": "json",
        "c.xml": "xml",
        "d.txt": "text",
        "e.log": "text",
        "f.png": "png",
        "g.jpg": "jpeg",
        "h.zip": "zip",
    }


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (zip_bytes([("../../etc/cron.d/evil", b"x")]), "leaves the archive (..)"),
        (zip_bytes([("/etc/passwd", b"x")]), "'/etc/passwd', which is absolute"),
        (zip_bytes([("C:/Windows/evil.dll", b"x")]), "which is absolute"),
        (zip_bytes([("ok.txt", b"x")], symlink="link"), "contains a symbolic link ('link')"),
        (zip_bytes([("bomb.txt", b"0" * 90_000)]), "like a zip bomb"),
        (zip_bytes([(f"f{n}.txt", b"x") for n in range(30)]), "has 30 entries; at most 20"),
        # Incompressible bytes: over the total without being over the ratio.
        (
            zip_bytes([("a.bin", random.Random(4).randbytes(102_400))]),
            "expands to more than 100,000 bytes",
        ),
        (b"PK\x03\x04 truncated", "The ZIP archive cannot be read"),
    ],
)
def test_it_checks_a_zip_before_using_it(
    make_application, vendor_alice, settings, archive, message
):
    settings.EVIDENCE_ZIP_MAX_ENTRIES = 20
    settings.EVIDENCE_ZIP_MAX_TOTAL_BYTES = 100_000
    application = make_application("draft")
    response = post_file(client_for(vendor_alice), application, archive, "evidence.zip")
    assert response.status_code == 400
    assert message in page_text(response)
    assert_nothing_stored(application)


def lying_about_sizes(archive: bytes, declared: int) -> bytes:
    """The same archive, its local and central headers claiming every entry is `declared` bytes."""
    data = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        while at != -1:
            struct.pack_into("<I", data, at + offset, declared)
            at = data.find(signature, at + 4)
    return bytes(data)


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (
            lying_about_sizes(zip_bytes([("bomb.txt", b"0" * 90_000)]), 10),
            "The ZIP entry 'bomb.txt' is compressed more than 100:1, like a zip bomb: refused.",
        ),
        (
            lying_about_sizes(
                zip_bytes([("a.bin", bytes(range(256)) * 200), ("b.bin", bytes(range(256)) * 200)]),
                10,
            ),
            "The ZIP archive expands to more than 100,000 bytes: refused.",
        ),
    ],
)
def test_a_zip_whose_headers_lie_about_sizes_is_measured_by_its_real_bytes(
    make_application, vendor_alice, settings, archive, message
):
    settings.EVIDENCE_ZIP_MAX_TOTAL_BYTES = 100_000
    settings.EVIDENCE_ZIP_MAX_RATIO = 100
    # The declared sizes alone pass every check.
    assert all(entry.file_size == 10 for entry in zipfile.ZipFile(io.BytesIO(archive)).infolist())
    application = make_application("draft")
    response = post_file(client_for(vendor_alice), application, archive, "evidence.zip")
    assert response.status_code == 400
    assert message in page_text(response)
    assert_nothing_stored(application)


def test_a_damaged_file_at_the_hash_name_is_written_again(make_application, vendor_alice):
    digest = hashlib.sha256(PDF).hexdigest()
    name = f"evidence/{digest[:2]}/{digest}"
    # Left over from a crash: half written, and no blob row points at it.
    default_storage.save(name, io.BytesIO(PDF[:10]))
    first = make_application("draft")
    response = post_file(client_for(vendor_alice), first, PDF, "a.pdf")
    assert response.status_code == 302
    with default_storage.open(name) as stored:
        assert stored.read() == PDF
    # Altered on disk after it was stored (same size): checked by hash, written again.
    with default_storage.open(name, "wb") as stored:
        stored.write(b"%PDF-1.7 " + b"x" * (len(PDF) - 9))
    second = make_application("draft", version="5.2")
    response = post_file(client_for(vendor_alice), second, PDF, "b.pdf")
    assert response.status_code == 302
    with default_storage.open(name) as stored:
        assert stored.read() == PDF
    assert EvidenceBlob.objects.count() == 1
    assert default_storage.listdir(f"evidence/{digest[:2]}")[1] == [digest]  # no temporary


def test_a_file_already_there_with_the_right_bytes_is_used(make_application, vendor_alice):
    digest = hashlib.sha256(PDF).hexdigest()
    name = f"evidence/{digest[:2]}/{digest}"
    default_storage.save(name, io.BytesIO(PDF))
    application = make_application("draft")
    response = post_file(client_for(vendor_alice), application, PDF, "a.pdf")
    assert response.status_code == 302
    assert EvidenceFile.objects.get().blob.storage_name == name
    assert default_storage.listdir(f"evidence/{digest[:2]}")[1] == [digest]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_identical_uploads_racing_each_other_both_succeed(make_application, vendor_alice):
    from support import race

    cases = [make_application("draft", version=f"6.{n}") for n in range(4)]
    clients = [client_for(vendor_alice) for _ in cases]
    outcomes = race(
        *[
            (lambda c=c, a=a: post_file(c, a, PDF, "same.pdf"))
            for c, a in zip(clients, cases, strict=True)
        ]
    )
    assert [getattr(o, "status_code", o) for o in outcomes] == [302] * 4
    assert EvidenceBlob.objects.count() == 1 and EvidenceFile.objects.count() == 4
    digest = hashlib.sha256(PDF).hexdigest()
    with default_storage.open(f"evidence/{digest[:2]}/{digest}") as stored:
        assert stored.read() == PDF


def test_a_hostile_name_is_stored_under_a_generated_name_and_served_safely(
    make_application, vendor_alice, officer_erin
):
    application = make_application("draft")
    hostile = "..\\..\\<b onmouseover=x>; filename=evil.sh; rapport é.pdf"
    post_file(client_for(vendor_alice), application, PDF, hostile)
    evidence = EvidenceFile.objects.get()
    assert evidence.blob.storage_name.startswith("evidence/")
    assert ".." not in evidence.blob.storage_name and "evil" not in evidence.blob.storage_name
    response = client_for(officer_erin).get(f"/evidence/files/{evidence.pk}/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="')
    assert "\r" not in disposition and "\n" not in disposition
    ascii_part = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert set(ascii_part) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
    )
    assert "filename*=UTF-8''" in disposition and "%C3%A9.pdf" in disposition
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "filename=evil.sh" not in disposition.split(";")[1]
    assert evidence.original_name == "<b onmouseover=x>; filename=evil.sh; rapport é.pdf"
    page = client_for(vendor_alice).get(f"/applications/{application.pk}/coverage/")
    assert b"<b onmouseover" not in page.content


def test_the_content_disposition_survives_quotes_and_line_breaks():
    from evidence.files import content_disposition

    header = content_disposition('a"b\r\nSet-Cookie: x=1\\..\\c.pdf', fallback="evidence-1")
    assert "\r" not in header and "\n" not in header
    assert header.startswith("attachment; filename=\"c.pdf\"; filename*=UTF-8''c.pdf")
    assert content_disposition("é.pdf", fallback="evidence-7").startswith(
        'attachment; filename="_.pdf"'
    )


def test_only_people_who_see_the_case_can_download(
    make_application, vendor_alice, vendor_bob, officer_erin, buyer
):
    application = make_application("draft")
    post_file(client_for(vendor_alice), application, PDF, "a.pdf")
    url = f"/evidence/files/{EvidenceFile.objects.get().pk}/"
    assert client_for(vendor_alice).get(url).status_code == 200
    assert client_for(officer_erin).get(url).status_code == 200
    assert client_for(vendor_bob).get(url).status_code == 404
    assert buyer.get(url).status_code == 302  # to the login page


def test_a_competitor_cannot_upload_to_a_foreign_case(make_application, vendor_bob):
    application = make_application("draft")
    response = post_file(client_for(vendor_bob), application, PDF, "a.pdf")
    assert response.status_code == 404
    assert_nothing_stored(application)


def test_an_officer_cannot_add_evidence_for_the_vendor(make_application, officer_erin):
    application = make_application("draft")
    response = post_file(client_for(officer_erin), application, PDF, "a.pdf")
    assert response.status_code == 403
    assert "Only the vendor of the case can add evidence" in page_text(response)
    assert_nothing_stored(application)


def test_evidence_cannot_be_added_once_the_case_is_with_the_lab(pending_case, vendor_alice):
    response = post_file(client_for(vendor_alice), pending_case, PDF, "late.pdf")
    assert response.status_code == 409
    assert "evidence can only be added while the case is a draft" in page_text(response)
    assert_nothing_stored(pending_case)


def test_evidence_may_be_added_after_submission(make_application, vendor_alice):
    application = make_application("submitted")
    assert post_file(client_for(vendor_alice), application, PDF, "a.pdf").status_code == 302


def test_it_refuses_an_aipo_the_case_does_not_claim(make_application, vendor_alice):
    from support import aipo

    application = make_application("draft")
    other = aipo("MHD", "DOC_SOURCE")
    response = post_file(client_for(vendor_alice), application, PDF, "a.pdf", aipos=[other.pk])
    assert response.status_code == 400
    assert_nothing_stored(application)


def test_the_case_section_lists_files_and_links(make_application, vendor_alice):
    from django.template.loader import render_to_string

    application = make_application("draft")
    post_file(client_for(vendor_alice), application, PDF, "conformance.pdf")
    html = render_to_string(
        "evidence/_case_evidence.html", {"application": application, "user": vendor_alice}
    )
    assert "conformance.pdf" in html
    assert f"/applications/{application.pk}/coverage/" in html
    assert f"/applications/{application.pk}/testreports/" in html
    assert f"/applications/{application.pk}/capability-statement/" in html


def test_the_admin_shows_evidence_but_cannot_change_or_delete_it(
    make_application, vendor_alice, django_user_model
):
    from django.test import Client

    application = make_application("draft")
    post_file(client_for(vendor_alice), application, PDF, "a.pdf")
    evidence = EvidenceFile.objects.get()
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", "r@x.org", "pw"))
    for model, obj in (("evidencefile", evidence), ("evidenceblob", evidence.blob)):
        url = f"/admin/evidence/{model}/{obj.pk}/"
        assert admin.get(f"{url}change/").status_code == 200
        assert admin.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    assert EvidenceFile.objects.filter(pk=evidence.pk).exists()
