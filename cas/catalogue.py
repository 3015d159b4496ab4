"""The shipped IHE catalogue: one row per actor / integration profile / option (AIPO).

Pure data access: reads ``cas/data/ihe_catalogue.csv`` (built by
``scripts/build_catalogue.py``) into frozen dataclasses. No Django, no database; the
models layer decides how to load these rows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "ihe_catalogue.csv"

COLUMNS = (
    "domain_keyword",
    "domain_name",
    "profile_keyword",
    "profile_name",
    "profile_status",
    "tf_revision",
    "actor_keyword",
    "actor_name",
    "option_keyword",
    "option_name",
    "option_reference",
)

# tf_revision is unknown for the 2011 snapshot rows and NONE has no reference, so these
# two may be empty; everything else identifies or names the AIPO.
OPTIONAL_COLUMNS = frozenset({"tf_revision", "option_reference"})
REQUIRED_COLUMNS = tuple(name for name in COLUMNS if name not in OPTIONAL_COLUMNS)

NONE_OPTION = "NONE"


@dataclass(frozen=True)
class CatalogueRow:
    domain_keyword: str
    domain_name: str
    profile_keyword: str
    profile_name: str
    profile_status: str
    tf_revision: str
    actor_keyword: str
    actor_name: str
    option_keyword: str
    option_name: str
    option_reference: str

    @property
    def aipo(self) -> tuple[str, str, str]:
        """(profile, actor, option) keywords: the key Connectathon results use."""
        return (self.profile_keyword, self.actor_keyword, self.option_keyword)

    @property
    def is_baseline(self) -> bool:
        return self.option_keyword == NONE_OPTION


def read_catalogue(*, path: Path | None = None) -> list[CatalogueRow]:
    """Read and validate the catalogue CSV; raise ValueError naming line and column."""
    source = DEFAULT_PATH if path is None else Path(path)
    rows: list[CatalogueRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    with source.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{source}: line 1: the file is empty (expected a header row)")
        names = [cell.strip() for cell in header]
        missing = [name for name in COLUMNS if name not in names]
        if missing:
            raise ValueError(f"{source}: line 1: missing column(s): {', '.join(missing)}")
        position = {name: names.index(name) for name in COLUMNS}

        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            values = {
                name: cells[index].strip() if index < len(cells) else ""
                for name, index in position.items()
            }
            for name in REQUIRED_COLUMNS:
                if not values[name]:
                    raise ValueError(f"{source}: line {start}, column {name}: value is empty")
            row = CatalogueRow(**values)
            first = seen.setdefault(row.aipo, start)
            if first != start:
                raise ValueError(
                    f"{source}: line {start}, column option_keyword: AIPO "
                    f"{'/'.join(row.aipo)} already appears on line {first}"
                )
            rows.append(row)
    return rows
