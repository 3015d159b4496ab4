"""What an uploaded evidence file is, and whether it is safe to keep: pure, no database.

The type comes from the bytes (magic numbers, or a strict parse for the text formats) and
from the extension, and the two must agree: a PDF renamed .png, or a script renamed .pdf,
is refused. ZIP archives are inspected entry by entry before anything is stored.
"""

from __future__ import annotations

import copy
import io
import json
import re
import stat
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from urllib.parse import quote

PDF, JSON, XML, TEXT, PNG, JPEG, ZIP = "pdf", "json", "xml", "text", "png", "jpeg", "zip"

KIND_LABELS = {
    PDF: "PDF",
    JSON: "JSON",
    XML: "XML",
    TEXT: "plain text or log",
    PNG: "PNG image",
    JPEG: "JPEG image",
    ZIP: "ZIP archive",
}
EXTENSIONS = {
    ".pdf": PDF,
    ".json": JSON,
    ".xml": XML,
    ".txt": TEXT,
    ".log": TEXT,
    ".png": PNG,
    ".jpg": JPEG,
    ".jpeg": JPEG,
    ".zip": ZIP,
}
CONTENT_TYPES = {
    PDF: "application/pdf",
    JSON: "application/json",
    XML: "application/xml",
    TEXT: "text/plain; charset=utf-8",
    PNG: "image/png",
    JPEG: "image/jpeg",
    ZIP: "application/zip",
}


class FileRefused(Exception):
    """The message is shown to the vendor as it is."""


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int
    max_total_bytes: int
    max_ratio: int


def extension_of(name: str) -> str:
    match = re.search(r"(\.[A-Za-z0-9]{1,8})$", name.strip())
    return match.group(1).lower() if match else ""


def allowed_extensions() -> str:
    return ", ".join(sorted(EXTENSIONS))


def _looks_like_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def sniff(data: bytes) -> str | None:
    """The kind the bytes are, from their magic numbers; None when none of the allowed."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return ZIP
    if not _looks_like_text(data):
        return None
    text = data.decode("utf-8").lstrip("\ufeff").lstrip()
    if text.startswith(("{", "[")):
        try:
            json.loads(text)
        except ValueError:
            return TEXT
        return JSON
    if text.startswith("<"):
        return XML
    return TEXT


def file_kind(*, name: str, data: bytes) -> str:
    """The allowed kind of the file, or FileRefused saying what is wrong with it."""
    extension = extension_of(name)
    if extension not in EXTENSIONS:
        shown = extension or "no extension"
        raise FileRefused(
            f"Files of type {shown} are not accepted. Allowed: {allowed_extensions()}."
        )
    claimed = EXTENSIONS[extension]
    actual = sniff(data)
    if actual is None:
        raise FileRefused(
            f"The content of this file is not an accepted type (it ends in {extension}, but "
            f"its bytes are not {KIND_LABELS[claimed]})."
        )
    # JSON and XML are text too: a .txt or .log file may hold either.
    if claimed == TEXT and actual in (JSON, XML):
        return TEXT
    if actual != claimed:
        raise FileRefused(
            f"The file name says {KIND_LABELS[claimed]} ({extension}) but its content is "
            f"{KIND_LABELS[actual]}: the two must agree."
        )
    return claimed


def _unsafe_entry_path(name: str) -> bool:
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        return True
    return ".." in normalised.split("/")


_ZIP_CHUNK = 64 * 1024


def _real_size(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, limits: ZipLimits, total: int):
    """Decompress one entry as a stream, counting the bytes it really expands to.

    The sizes in the headers are whatever the archive's author wrote: the entry is read
    as if it declared more than the limits allow, so only its compressed data ends it,
    and the check stops as soon as a limit is passed.
    """
    unbounded = copy.copy(entry)
    unbounded.file_size = 2**62  # never the end: the limits below are
    ratio_limit = limits.max_ratio * max(entry.compress_size, 1)
    size = 0
    with archive.open(unbounded) as stream:
        while chunk := stream.read(_ZIP_CHUNK):
            size += len(chunk)
            if total + size > limits.max_total_bytes:
                raise FileRefused(
                    f"The ZIP archive expands to more than {limits.max_total_bytes:,} bytes: "
                    "refused."
                )
            if size > ratio_limit:
                raise FileRefused(
                    f"The ZIP entry {entry.filename!r} is compressed more than "
                    f"{limits.max_ratio}:1, like a zip bomb: refused."
                )
    return size


def check_zip(data: bytes, limits: ZipLimits) -> int:
    """Check an archive before anything uses it; return its entry count."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileRefused(f"The ZIP archive cannot be read ({exc}).") from None
    if len(entries) > limits.max_entries:
        raise FileRefused(
            f"The ZIP archive has {len(entries)} entries; at most {limits.max_entries} "
            "are accepted."
        )
    for entry in entries:
        if _unsafe_entry_path(entry.filename):
            raise FileRefused(
                f"The ZIP archive contains the path {entry.filename!r}, which is absolute or "
                "leaves the archive (..): refused."
            )
        mode = entry.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise FileRefused(
                f"The ZIP archive contains a symbolic link ({entry.filename!r}): refused."
            )
    total = 0
    for entry in entries:
        try:
            total += _real_size(archive, entry, limits, total)
        except FileRefused:
            raise
        except (
            zipfile.BadZipFile,
            NotImplementedError,
            RuntimeError,
            EOFError,
            OSError,
            ValueError,
            zlib.error,
        ) as exc:
            raise FileRefused(
                f"The ZIP entry {entry.filename!r} cannot be read ({exc}): refused."
            ) from None
    compressed = sum(entry.compress_size for entry in entries)
    if compressed and total / compressed > limits.max_ratio:
        raise FileRefused(
            f"The ZIP archive is compressed more than {limits.max_ratio}:1, like a zip bomb: "
            "refused."
        )
    return len(entries)


def display_name(name: str) -> str:
    """The uploaded name as we show it: no path, no control characters, bounded length."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().strip(".") or "file"
    if len(name) > 150:
        extension = extension_of(name)
        name = name[: 150 - len(extension)] + extension
    return name


def content_disposition(name: str, fallback: str) -> str:
    """RFC 6266: an ASCII-only fallback plus the real name, percent-encoded, as filename*."""
    safe = display_name(name)
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", safe)
    if not re.search(r"[A-Za-z0-9]", ascii_name):
        ascii_name = fallback
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(safe, safe='')}"
