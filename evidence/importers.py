"""Parse Gazelle Test Management's "Connectathon results summary" export (CSV or XLSX).

Pure parsing: a text or bytes stream in, frozen dataclasses out. No Django, no database;
resolving keywords against the catalogue and storing results is the caller's job.

The export has one row per organisation / system / AIPO with its final grade. Columns
(header names matched case-insensitively, surrounding spaces ignored):
Organisation (or Organization), System, Profile, Actor, Option, Type, Results, and the
optional test counters R/O, V, W, P, F. Profile, Actor and Option hold Gazelle keywords
("XDS.b", "DOC_CONSUMER", "NONE"); an empty Option is the baseline, NONE.

The main entry point is ``iter_results``: it streams a CSV or XLSX file (chosen by its
name) and yields each row as a ``ResultRow`` or each problem as a ``RowError``, in file
order, with the duplicate rows reported at the end; memory stays flat whatever the size.
evidence.services reads a file twice with it: once to check every row (a file with any bad
row is refused whole, naming each one), then to write. ``parse_results_csv`` is a
convenience for small CSV files: every row as a list, or ``ImportRefused``.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import itertools
import re
import zipfile
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

PASSED = "passed"
FAILED = "failed"
AT_RISK = "at_risk"
WITHDRAWN = "withdrawn"
NOT_GRADED = "not_graded"
NO_PEER = "no_peer"
DID_NOT_COMPLETE = "did_not_complete"

GRADES = (PASSED, FAILED, AT_RISK, WITHDRAWN, NOT_GRADED, NO_PEER, DID_NOT_COMPLETE)

GRADE_LABELS = {
    PASSED: "Pass",
    FAILED: "Failed",
    AT_RISK: "At Risk",
    WITHDRAWN: "Withdrawn",
    NOT_GRADED: "Option Not Graded",
    NO_PEER: "No Peer",
    DID_NOT_COMPLETE: "Did Not Complete",
}

PASSING_GRADES = frozenset({PASSED})

# Keys are spellings with case, spaces and punctuation removed, so "No Peer", "nopeer",
# "NO_PEER" and "no-peer" all match. The resultStatus* forms are the message keys Gazelle
# stores as labels in tm_status_results, which an untranslated export would show.
_GRADE_ALIASES = {
    "pass": PASSED,
    "passed": PASSED,
    "resultstatuspassed": PASSED,
    "fail": FAILED,
    "failed": FAILED,
    "resultstatusfailed": FAILED,
    "atrisk": AT_RISK,
    "resultstatusatrisk": AT_RISK,
    "withdrawn": WITHDRAWN,
    "resultstatuswithdrawn": WITHDRAWN,
    "nograding": NOT_GRADED,
    "notgraded": NOT_GRADED,
    "optionnotgraded": NOT_GRADED,
    "nopeer": NO_PEER,
    "didnotcomplete": DID_NOT_COMPLETE,
}
_MESSAGE_KEY_PREFIX = "gazelletmtestingresults"

NONE_OPTION = "NONE"

ORGANISATION = "Organisation"
SYSTEM = "System"
PROFILE = "Profile"
ACTOR = "Actor"
OPTION = "Option"
TYPE = "Type"
RESULTS = "Results"

REQUIRED_COLUMNS = (ORGANISATION, SYSTEM, PROFILE, ACTOR, OPTION, TYPE, RESULTS)
COUNTER_COLUMNS = ("R/O", "V", "W", "P", "F")

_COLUMN_ALIASES = {
    ORGANISATION: frozenset({"organisation", "organization"}),
    SYSTEM: frozenset({"system"}),
    PROFILE: frozenset({"profile"}),
    ACTOR: frozenset({"actor"}),
    OPTION: frozenset({"option"}),
    TYPE: frozenset({"type"}),
    RESULTS: frozenset({"results"}),
    **{name: frozenset({name.casefold()}) for name in COUNTER_COLUMNS},
}

# Option may be empty (it means NONE); every other required cell must hold something.
_NON_EMPTY_COLUMNS = (ORGANISATION, SYSTEM, PROFILE, ACTOR, TYPE, RESULTS)
_DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class ResultRow:
    """One graded AIPO of one system; ``line`` is where the row starts in the file."""

    line: int
    organisation: str
    system: str
    profile: str
    actor: str
    option: str
    type: str
    grade: str
    raw_grade: str
    # (column, value) pairs in R/O, V, W, P, F order, for the counter columns the file has;
    # a tuple rather than a dict so the row stays hashable.
    counts: tuple[tuple[str, int], ...] = ()

    @property
    def aipo(self) -> tuple[str, str, str]:
        return (self.profile, self.actor, self.option)

    @property
    def passed(self) -> bool:
        return self.grade in PASSING_GRADES

    @property
    def grade_label(self) -> str:
        return GRADE_LABELS[self.grade]

    def count(self, column: str) -> int | None:
        return dict(self.counts).get(column)


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}" if self.column else f"line {self.line}"
        return f"{where}: {self.message}"


class ImportRefused(Exception):
    """The file was rejected as a whole; ``errors`` lists every problem found."""

    def __init__(self, errors: Iterable[RowError]) -> None:
        self.errors: list[RowError] = list(errors)
        bad_rows = len({error.line for error in self.errors})
        noun = "row" if bad_rows == 1 else "rows"
        super().__init__(f"{bad_rows} bad {noun}; nothing was imported")

    def __reduce__(self) -> tuple[type[ImportRefused], tuple[list[RowError]]]:
        # Celery pickles task exceptions; rebuild from the errors, not from the message.
        return (type(self), (self.errors,))


@functools.lru_cache(maxsize=256)
def normalise_grade(text: str) -> str | None:
    """Map a Gazelle UI label or tm keyword to one of ``GRADES``; None if unknown."""
    squashed = re.sub(r"[^0-9a-z]", "", text.casefold())
    squashed = squashed.removeprefix(_MESSAGE_KEY_PREFIX)
    return _GRADE_ALIASES.get(squashed)


def _text_lines(stream: IO[str] | IO[bytes]) -> Iterator[str]:
    if isinstance(stream.read(0), bytes):
        # utf-8-sig drops a BOM (Excel adds one) and reads plain UTF-8 unchanged.
        lines: Iterator[str] = codecs.iterdecode(stream, "utf-8-sig")  # type: ignore[arg-type]
    else:
        lines = iter(stream)  # type: ignore[arg-type]
    first = next(lines, None)
    if first is None:
        return
    yield first.removeprefix("\ufeff")
    yield from lines


def _pick_delimiter(header_line: str) -> str:
    # Spreadsheets in comma-decimal locales re-save CSV with ";"; the header tells which.
    counts = {delimiter: header_line.count(delimiter) for delimiter in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _header_key(cell: str) -> str:
    return " ".join(cell.split()).casefold()


def _quote_list(names: Iterable[str]) -> str:
    return ", ".join(names)


def _read_header(
    cells: list[str], line: int
) -> tuple[dict[str, int], dict[str, str], list[RowError]]:
    """Return column positions, the file's own spelling of each column, and errors."""
    keys = [_header_key(cell) for cell in cells]
    positions: dict[str, int] = {}
    spelling: dict[str, str] = {}
    errors: list[RowError] = []
    missing: list[str] = []
    for column, aliases in _COLUMN_ALIASES.items():
        hits = [index for index, key in enumerate(keys) if key in aliases]
        if len(hits) > 1:
            errors.append(
                RowError(
                    line=line,
                    column=column,
                    value=cells[hits[1]].strip(),
                    message=f"column {column} appears {len(hits)} times in the header",
                )
            )
        elif hits:
            positions[column] = hits[0]
            spelling[column] = " ".join(cells[hits[0]].split())
        elif column in REQUIRED_COLUMNS:
            missing.append(column)
    if missing:
        found = [cell.strip() for cell in cells if cell.strip()]
        errors.insert(
            0,
            RowError(
                line=line,
                column="",
                value=",".join(cells),
                message=(
                    f"missing required column(s): {_quote_list(missing)} "
                    f"(found: {_quote_list(found) or 'nothing'})"
                ),
            ),
        )
    return positions, spelling, errors


def _csv_cell_rows(stream: IO[str] | IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    """(line where the row starts, cells) for each CSV record, multi-line cells counted."""
    lines = _text_lines(stream)
    first = next(lines, None)
    if first is None:
        return
    reader = csv.reader(itertools.chain([first], lines), delimiter=_pick_delimiter(first))
    last_line = 0
    for cells in reader:
        line, last_line = last_line + 1, reader.line_num
        yield line, cells


def _xlsx_cell_rows(stream: IO[bytes]) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells as text) for the first sheet, read in openpyxl's streaming mode."""
    from openpyxl import load_workbook

    workbook = load_workbook(stream, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [_xlsx_text(value) for value in values]
    finally:
        workbook.close()


def _xlsx_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        # Spreadsheets store counters as floats: 2.0 is the whole number 2.
        return str(int(value))
    return str(value)


def is_xlsx(name: str) -> bool:
    return name.lower().endswith((".xlsx", ".xlsm"))


def iter_results(*, stream: IO[bytes], name: str = "results.csv") -> Iterator[ResultRow | RowError]:
    """Rows and errors of a CSV or XLSX export, chosen by the file name's extension."""
    if not is_xlsx(name):
        yield from iter_results_csv(stream=stream)
        return
    try:
        yield from _iter_cell_rows(_xlsx_cell_rows(stream))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        yield RowError(
            line=1,
            column="",
            value="",
            message=f"the file is not a readable XLSX workbook ({exc})",
        )


def iter_results_csv(*, stream: IO[str] | IO[bytes]) -> Iterator[ResultRow | RowError]:
    """Yield each data row as a ResultRow, or one RowError per problem, in file order.

    A header problem yields its errors and stops: no row can be read without columns.
    """
    yield from _iter_cell_rows(_csv_cell_rows(stream))


def _iter_cell_rows(rows: Iterator[tuple[int, list[str]]]) -> Iterator[ResultRow | RowError]:
    """The checks shared by CSV and XLSX: header, cells, grades, counters, duplicates.

    Memory is one row plus 12 bytes per valid row (a 64-bit digest of its key and its line,
    in flat arrays), so a 100k-row file costs about a megabyte; duplicates are reported
    after the last row, each naming the line it repeats.
    """
    last_line = 0
    try:
        header: list[str] | None = None
        header_line = 1
        for line, cells in rows:
            last_line = line
            if any(cell.strip() for cell in cells):
                header, header_line = cells, line
                break
        if header is None:
            yield RowError(
                line=1,
                column="",
                value="",
                message=(
                    f"the file is empty (expected a header row: {_quote_list(REQUIRED_COLUMNS)})"
                ),
            )
            return
        positions, spelling, header_errors = _read_header(header, header_line)
        if header_errors:
            yield from header_errors
            return

        width = len(header)
        counter_columns = [name for name in COUNTER_COLUMNS if name in positions]
        seen = _KeyLog()
        for line, cells in rows:
            last_line = line
            if not any(cell.strip() for cell in cells):
                continue
            yield from _parse_row(cells, line, width, positions, spelling, counter_columns, seen)
        yield from seen.duplicates()
    except (UnicodeDecodeError, csv.Error) as exc:
        yield RowError(
            line=last_line + 1,
            column="",
            value="",
            message=f"the file cannot be read from here on ({exc}); is it a UTF-8 CSV export?",
        )


class _KeyLog:
    """Digests of (organisation, system, profile, actor, option) with their lines."""

    def __init__(self) -> None:
        self.digests = array("Q")
        self.lines = array("L")

    def add(self, key: tuple[str, ...], line: int) -> None:
        joined = "\x1f".join(value.casefold() for value in key)
        digest = int.from_bytes(hashlib.blake2b(joined.encode(), digest_size=8).digest(), "big")
        self.digests.append(digest)
        self.lines.append(line)

    def duplicates(self) -> Iterator[RowError]:
        ordered = sorted(self.digests)
        repeated = {a for a, b in itertools.pairwise(ordered) if a == b}
        del ordered
        if not repeated:
            return
        first: dict[int, int] = {}
        for digest, line in zip(self.digests, self.lines, strict=True):
            if digest not in repeated:
                continue
            if digest not in first:
                first[digest] = line
                continue
            yield RowError(
                line=line,
                column="",
                value="",
                message=(
                    f"duplicate of line {first[digest]}: same organisation, system, profile, "
                    "actor and option"
                ),
            )


def _parse_row(
    cells: list[str],
    line: int,
    width: int,
    positions: dict[str, int],
    spelling: dict[str, str],
    counter_columns: list[str],
    seen: _KeyLog,
) -> Iterator[ResultRow | RowError]:
    length = len(cells)
    values = {
        column: cells[index].strip() if index < length else ""
        for column, index in positions.items()
    }
    cell = values.__getitem__

    errors: list[RowError] = []
    extra = [value.strip() for value in cells[width:] if value.strip()]
    if extra:
        errors.append(
            RowError(
                line=line,
                column="",
                value=",".join(extra),
                message=f"the row has {len(cells)} cells but the header has {width}",
            )
        )
    for column in _NON_EMPTY_COLUMNS:
        if not cell(column):
            errors.append(
                RowError(
                    line=line,
                    column=spelling[column],
                    value="",
                    message="the cell is empty but a value is required",
                )
            )

    raw_grade = cell(RESULTS)
    grade = normalise_grade(raw_grade) if raw_grade else None
    if raw_grade and grade is None:
        expected = _quote_list(GRADE_LABELS[name] for name in GRADES)
        errors.append(
            RowError(
                line=line,
                column=spelling[RESULTS],
                value=raw_grade,
                message=f"{raw_grade!r} is not a known grade (expected one of: {expected})",
            )
        )

    counts: list[tuple[str, int]] = []
    for column in counter_columns:
        raw = cell(column)
        if not raw:
            # A blank counter cell counts nothing.
            counts.append((column, 0))
        elif raw.isascii() and raw.isdigit():
            counts.append((column, int(raw)))
        else:
            errors.append(
                RowError(
                    line=line,
                    column=spelling[column],
                    value=raw,
                    message=f"{raw!r} is not a whole number of tests",
                )
            )

    if errors or grade is None:
        yield from errors
        return

    option = cell(OPTION)
    # Gazelle's baseline keyword is NONE; a blank or lower-case cell means the same.
    if not option or option.casefold() == NONE_OPTION.casefold():
        option = NONE_OPTION
    organisation, system = cell(ORGANISATION), cell(SYSTEM)
    profile, actor = cell(PROFILE), cell(ACTOR)

    seen.add((organisation, system, profile, actor, option), line)

    yield ResultRow(
        line=line,
        organisation=organisation,
        system=system,
        profile=profile,
        actor=actor,
        option=option,
        type=cell(TYPE),
        grade=grade,
        raw_grade=raw_grade,
        counts=tuple(counts),
    )


def parse_results_csv(*, stream: IO[str] | IO[bytes]) -> list[ResultRow]:
    """Return every row of the export, or raise ImportRefused listing every bad row.

    A file with a valid header and no data rows returns an empty list.
    """
    rows: list[ResultRow] = []
    errors: list[RowError] = []
    for item in iter_results_csv(stream=stream):
        if isinstance(item, RowError):
            errors.append(item)
        elif not errors:
            # Once the file is known to be refused, valid rows are no longer needed.
            rows.append(item)
    if errors:
        raise ImportRefused(sorted(errors, key=lambda error: error.line))
    return rows
