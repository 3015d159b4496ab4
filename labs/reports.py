"""Pure PDF rendering of a lab's test report (ISO/IEC 17025:2017 §7.8.2.1), with reportlab.

Data in (ReportContent), bytes out; no database. Every page carries the report id and
"Page x of y"; the last page ends with a marked "End of report".
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

END_OF_REPORT = "End of report"
ITEMS_TESTED_STATEMENT = (
    "The results in this report relate only to the items tested: the product and exact "
    "version named above, for the actor / profile / option triples listed. This report shall "
    "not be reproduced except in full without the written approval of the laboratory."
)


@dataclass(frozen=True)
class ResultLine:
    aipo: str
    aipo_label: str
    test_case: str
    test_case_name: str
    tool: str
    result: str
    comment: str
    version: int
    recorded_by: str
    recorded_at: datetime
    evidence: Sequence[str] = ()


@dataclass(frozen=True)
class ReportContent:
    number: str
    title: str
    amends_number: str
    amendment_reason: str
    lab_name: str
    lab_address: str
    accreditation_body: str
    accreditation_number: str
    accreditation_standard: str
    authorisation_number: str
    customer_name: str
    customer_address: str
    product_name: str
    product_version: str
    case_reference: str
    received_on: date | None
    assigned_on: date | None
    tested_from: date | None
    tested_until: date | None
    scheme_name: str
    scheme_version: str
    tools: Sequence[str]
    results: Sequence[ResultLine]
    verdicts: Sequence[tuple[str, str]]
    reviewed_by: str
    reviewed_at: datetime
    authorised_by: str
    authorised_at: datetime
    issued_at: datetime
    extra_notes: Sequence[str] = field(default_factory=tuple)


def _day(value: date | datetime | None) -> str:
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d")


def _moment(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


class _NumberedCanvas(pdf_canvas.Canvas):
    """Defers page output until the end so that every page can say "x of y"."""

    report_number = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._saved_pages: list[dict] = []

    def showPage(self) -> None:  # noqa: N802 - reportlab's name
        self._saved_pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._saved_pages)
        for state in self._saved_pages:
            self.__dict__.update(state)
            self.setFont("Helvetica", 7.5)
            self.drawString(18 * mm, 10 * mm, f"Test report {self.report_number}")
            self.drawRightString(A4[0] - 18 * mm, 10 * mm, f"Page {self._pageNumber} of {total}")
            super().showPage()
        super().save()


def render_report_pdf(*, content: ReportContent) -> bytes:
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=9, leading=11.5)
    label = ParagraphStyle("label", parent=body, fontName="Helvetica-Bold")
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9)
    title = ParagraphStyle("title", parent=styles["Title"], fontSize=17)
    heading = ParagraphStyle("heading", parent=styles["Heading2"], fontSize=11.5, spaceBefore=6)

    def p(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(text or "-", quote=False).replace("\n", "<br/>"), style)

    c = content

    def fields_table(rows: list[tuple[str, str]]) -> Table:
        table = Table(
            [[p(k, label), p(v)] for k, v in rows], colWidths=[48 * mm, 124 * mm], hAlign="LEFT"
        )
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, -2), 0.25, colors.lightgrey),
                    ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ]
            )
        )
        return table

    story: list[Any] = [Paragraph(escape(c.title), title), p(f"Report id: {c.number}", label)]
    if c.amends_number:
        story += [
            p(
                f"This report is an amendment to test report {c.amends_number}, which it "
                f"replaces. Reason for the amendment: {c.amendment_reason}"
            )
        ]
    story += [
        Paragraph("Laboratory", heading),
        fields_table(
            [
                ("Laboratory", c.lab_name),
                ("Address", c.lab_address),
                (
                    "Accreditation",
                    f"{c.accreditation_body}, accreditation number {c.accreditation_number} "
                    f"({c.accreditation_standard})",
                ),
                ("Scheme authorisation number", c.authorisation_number),
            ]
        ),
        Paragraph("Customer and item tested", heading),
        fields_table(
            [
                ("Customer", c.customer_name),
                ("Customer address", c.customer_address),
                ("Product", c.product_name),
                ("Exact version", c.product_version),
                ("Case reference", c.case_reference),
                ("Application received", _day(c.received_on)),
                ("Assigned to the laboratory", _day(c.assigned_on)),
                ("Dates of testing", f"{_day(c.tested_from)} to {_day(c.tested_until)}"),
            ]
        ),
        Paragraph("Method", heading),
        fields_table(
            [
                ("Scheme", f"{c.scheme_name}, version {c.scheme_version}"),
                ("Tools used", "\n".join(c.tools) or "none recorded"),
            ]
        ),
        Paragraph("Results per actor / profile / option", heading),
    ]
    verdict_table = Table(
        [[p("Actor / profile / option", label), p("Result", label)]]
        + [[p(aipo, small), p(verdict, small)] for aipo, verdict in c.verdicts],
        colWidths=[140 * mm, 32 * mm],
        repeatRows=1,
        hAlign="LEFT",
    )
    verdict_table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ]
        )
    )
    story += [verdict_table, Paragraph("Test records", heading)]
    rows: list[list[Any]] = [
        [p(h, label) for h in ("AIPO", "Test case", "Tool", "Result", "Comment and evidence")]
    ]
    for line in c.results:
        amended = f" (version {line.version})" if line.version > 1 else ""
        notes = "\n".join(
            x
            for x in (
                line.comment,
                *line.evidence,
                f"recorded by {line.recorded_by}, {_moment(line.recorded_at)}",
            )
            if x
        )
        rows.append(
            [
                p(line.aipo, small),
                p(f"{line.test_case}\n{line.test_case_name}".strip(), small),
                p(line.tool, small),
                p(line.result + amended, small),
                p(notes, small),
            ]
        )
    records_table = Table(
        rows,
        colWidths=[38 * mm, 40 * mm, 28 * mm, 22 * mm, 44 * mm],
        repeatRows=1,
        hAlign="LEFT",
    )
    records_table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ]
        )
    )
    story += [
        records_table,
        Paragraph("Statement", heading),
        p(ITEMS_TESTED_STATEMENT),
        *[p(note) for note in c.extra_notes],
        Paragraph("Authorisation", heading),
        fields_table(
            [
                ("Technical review", f"approved by {c.reviewed_by}, {_moment(c.reviewed_at)}"),
                ("Report authorised by", f"{c.authorised_by}, {_moment(c.authorised_at)}"),
                ("Date of issue", _moment(c.issued_at)),
            ]
        ),
        Spacer(1, 8 * mm),
        p(f"*** {END_OF_REPORT} {c.number} ***", label),
    ]

    class Canvas(_NumberedCanvas):
        report_number = c.number

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"{c.title} {c.number}",
        author=c.lab_name,
        subject=f"{c.product_name} {c.product_version}",
        invariant=1,
    )
    doc.build(story, canvasmaker=Canvas)
    return buffer.getvalue()
