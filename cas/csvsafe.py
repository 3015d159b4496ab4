"""Cells for CSV files that people open in spreadsheets.

A spreadsheet runs a cell that starts with =, +, -, @ (or a tab or carriage return before
one) as a formula: a vendor naming its product "=HYPERLINK(...)" would run code on a buyer's
machine. Every string cell of a download goes through `csv_safe`, which puts a single quote
before such a text (OWASP's advice); the spreadsheet then shows it as text, quote hidden.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> object:
    """The text with a leading quote if a spreadsheet would read it as a formula; other
    values (numbers, None) unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_safe_row(values: Iterable[object]) -> list[object]:
    return [csv_safe(value) for value in values]
