"""Pure PDF rendering of an IHE conformity assessment certificate (reportlab + segno)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Any

import segno
from reportlab.graphics.shapes import Drawing, Rect
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

TITLE = "IHE Conformity Assessment Certificate"
QR_SIZE = 50 * mm
QR_QUIET_ZONE = 4  # modules, as required by ISO/IEC 18004


@dataclass(frozen=True)
class ScopeLine:
    profile_keyword: str
    profile_name: str
    actor_keyword: str
    actor_name: str
    option_keyword: str
    option_name: str
    tf_revision: str


@dataclass(frozen=True)
class CertificateContent:
    number: str
    vendor_name: str
    vendor_address: str
    product_name: str
    product_version: str
    scope: Sequence[ScopeLine]
    lab_name: str
    lab_accreditation_number: str
    accreditation_body: str
    scheme_name: str
    scheme_version: str
    decision_date: date
    valid_from: date
    valid_until: date
    status: str
    verify_url: str
    qr_text: str
    key_id: str
    # The full address of the published keys (SITE_URL/.well-known/jwks.json).
    jwks_url: str = "/.well-known/jwks.json"


def qr_text_for(*, base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/verify/qr#{token}"


def _qr_drawing(*, text: str, size: float) -> Drawing:
    qr = segno.make(text, error="m", micro=False)
    rows = [list(row) for row in qr.matrix_iter(border=QR_QUIET_ZONE)]
    module = size / len(rows)
    drawing = Drawing(size, size)
    drawing.add(Rect(0, 0, size, size, fillColor=colors.white, strokeColor=None))
    for y, row in enumerate(rows):
        x = 0
        # One rectangle per horizontal run of dark modules keeps the PDF small and seam-free.
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            drawing.add(
                Rect(
                    start * module,
                    size - (y + 1) * module,
                    (x - start) * module,
                    module,
                    fillColor=colors.black,
                    strokeColor=None,
                    strokeWidth=0,
                )
            )
    return drawing


def _fmt(value: date) -> str:
    return value.strftime("%d %B %Y").lstrip("0")


def render_certificate_pdf(*, content: CertificateContent) -> bytes:
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=9.5, leading=12)
    label = ParagraphStyle("label", parent=body, fontName="Helvetica-Bold")
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10)
    title = ParagraphStyle("title", parent=styles["Title"], fontSize=20, alignment=TA_CENTER)
    heading = ParagraphStyle("heading", parent=styles["Heading2"], fontSize=12, spaceBefore=8)

    def p(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(text, quote=False).replace("\n", "<br/>"), style)

    c = content
    fields: list[tuple[str, str]] = [
        ("Certificate number", c.number),
        ("Vendor", f"{c.vendor_name}\n{c.vendor_address}".strip()),
        ("Product", c.product_name),
        ("Version", c.product_version),
        ("Test laboratory", c.lab_name),
        (
            "Accreditation",
            f"{c.accreditation_body}, accreditation number {c.lab_accreditation_number}",
        ),
        ("Scheme", f"{c.scheme_name}, version {c.scheme_version}"),
        ("Decision date", _fmt(c.decision_date)),
        ("Valid from", _fmt(c.valid_from)),
        ("Valid until", _fmt(c.valid_until)),
        ("Status", c.status),
    ]
    field_table = Table(
        [[p(k, label), p(v)] for k, v in fields], colWidths=[36 * mm, 78 * mm], hAlign="LEFT"
    )
    field_table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -2), 0.25, colors.lightgrey),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    qr_cell = [_qr_drawing(text=c.qr_text, size=QR_SIZE), p("Scan to verify", small)]
    header = Table([[field_table, qr_cell]], colWidths=[118 * mm, QR_SIZE + 4 * mm], hAlign="LEFT")
    header.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))

    scope_rows: list[list[Any]] = [
        [p(h, label) for h in ("Profile", "Actor", "Option", "TF revision")]
    ]
    for line in c.scope:
        scope_rows.append(
            [
                p(f"{line.profile_keyword}\n{line.profile_name}", small),
                p(f"{line.actor_keyword}\n{line.actor_name}", small),
                p(f"{line.option_keyword}\n{line.option_name}".strip() or "-", small),
                p(line.tf_revision, small),
            ]
        )
    scope_table = Table(
        scope_rows, colWidths=[48 * mm, 48 * mm, 50 * mm, 26 * mm], repeatRows=1, hAlign="LEFT"
    )
    scope_table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ]
        )
    )

    verify_text = (
        f"Check this certificate online at {c.verify_url}. This PDF is digitally signed "
        "(PAdES); any change to the file invalidates the signature. The QR code carries a "
        "signed payload with the certificate's essential data, which can be verified offline "
        f"with the published keys at {c.jwks_url} (key ID {c.key_id})."
    )
    story = [
        Paragraph(TITLE, title),
        p(
            f"Certificate number {c.number}",
            ParagraphStyle("sub", parent=body, alignment=TA_CENTER),
        ),
        Spacer(1, 6 * mm),
        header,
        Paragraph("Scope", heading),
        p(
            "The product named above has been assessed as conforming to the following IHE "
            "integration profiles, actors and options:"
        ),
        Spacer(1, 2 * mm),
        scope_table,
        Paragraph("How to verify", heading),
        p(verify_text),
    ]

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.drawString(18 * mm, 10 * mm, f"{TITLE} {c.number}")
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"Page {doc.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"{TITLE} {c.number}",
        author=c.lab_name,
        subject=f"{c.vendor_name} {c.product_name} {c.product_version}",
        creator="OpenCAS",
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
