"""Build the shipped IHE catalogue, ``cas/data/ihe_catalogue.csv``.

Run by hand, from the repository root, whenever the source snapshot or the list of
added profiles below changes, then commit the regenerated CSV:

    .venv/bin/python scripts/build_catalogue.py            # write cas/data/ihe_catalogue.csv
    .venv/bin/python scripts/build_catalogue.py --check    # exit 1 if the shipped file is stale
    .venv/bin/python scripts/build_catalogue.py --source DIR --output FILE

Inputs (read-only; the project never reads them at run time, it reads the built copy):
``../shared/data/ihe-catalog/`` next to the repository, holding Gazelle Test
Management's 2011 seed snapshot: ``gazelle_tm_aipo_2011snapshot.csv`` (one row per
actor / integration profile / option), ``gazelle_tm_integration_profiles_2011snapshot.csv``
(profile domains) and ``gazelle_tm_options_2011snapshot.csv`` (option references).

Output: one row per AIPO with the columns in ``COLUMNS``, UTF-8 without BOM, ``\\n`` line
endings, sorted, so that rebuilding from the same inputs gives a byte-identical file.

Rules:
- Every snapshot AIPO is kept; only rows that are exact duplicates (every source column
  equal) are dropped, and the count is reported. Two different rows for one AIPO stop the
  build, because picking one would silently discard data.
- Domain: the AIPO row's ``domains`` column, else the profile's ``domains`` column in the
  profiles file, else ``OTHER``. A multi-domain value (``ITI|RAD``) keeps its first entry.
- ``tf_revision`` stays empty for snapshot rows: the snapshot does not record which
  Technical Framework revision each row was taken from.
- The mobile ITI profiles Connectathons test today (MHD, PDQm, PIXm, mXDE) are added from
  ``MOBILE_AIPOS`` below, with the implementation guide version as ``tf_revision``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data" / "ihe-catalog"
DEFAULT_OUTPUT = REPO_ROOT / "cas" / "data" / "ihe_catalogue.csv"

AIPO_FILE = "gazelle_tm_aipo_2011snapshot.csv"
PROFILES_FILE = "gazelle_tm_integration_profiles_2011snapshot.csv"
OPTIONS_FILE = "gazelle_tm_options_2011snapshot.csv"

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

OTHER_DOMAIN = "OTHER"

# Keys are the spellings found in the snapshot (EYE, PATH, epSOS), plus the spellings
# newer Gazelle instances use, so a future snapshot still gets full names.
DOMAIN_NAMES = {
    "CARD": "Cardiology",
    "DENT": "Dental",
    "ENDO": "Endoscopy",
    "EYE": "Eye Care",
    "EYECARE": "Eye Care",
    "HITSP": "HITSP (Healthcare Information Technology Standards Panel)",
    "ITI": "IT Infrastructure",
    "LAB": "Laboratory",
    "PAT": "Anatomic Pathology",
    "PATH": "Anatomic Pathology",
    "PCC": "Patient Care Coordination",
    "PCD": "Patient Care Device",
    "DEV": "Devices",
    "PHARM": "Pharmacy",
    "QRPH": "Quality, Research and Public Health",
    "RAD": "Radiology",
    "RO": "Radiation Oncology",
    "SUR": "Surgery",
    "epSOS": "epSOS (European Patients Smart Open Services)",
    OTHER_DOMAIN: "Other (no domain recorded)",
}

NONE_OPTION = ("NONE", "None", "")


@dataclass(frozen=True)
class _MobileProfile:
    keyword: str
    name: str
    status: str
    version: str
    options_reference: str
    # actor keyword, actor name, and the named options as (keyword, name) pairs
    actors: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]


# Versions are the latest published implementation guides at profiles.ihe.net as checked
# when this list was written; bump them (and rebuild) when IHE publishes a new one.
# Actor keywords reuse the snapshot's keyword wherever the same role already exists, so
# a system's PDQ and PDQm claims point at one actor, as Gazelle does.
_COMPREHENSIVE = ("COMPREHENSIVE_METADATA", "Comprehensive Metadata")
_UNCONTAINED = ("UNCONTAINED_REFERENCE", "UnContained Reference")
_SIMPLIFIED = ("SIMPLIFIED_PUBLISH", "Simplified Publish")
_GENERATE = ("GENERATE_METADATA", "Generate Metadata")
_FHIR_DOCS = ("FHIR_DOCUMENTS_PUBLISH", "ITI-65 FHIR Documents Publish")
_XDS_ON_FHIR = ("XDS_ON_FHIR", "XDS on FHIR")

MOBILE_PROFILES: tuple[_MobileProfile, ...] = (
    _MobileProfile(
        keyword="MHD",
        name="Mobile access to Health Documents",
        status="TI",
        version="4.2.3",
        options_reference="ITI MHD 1:33.2",
        actors=(
            (
                "DOC_SOURCE",
                "Document Source",
                (_COMPREHENSIVE, _UNCONTAINED, _SIMPLIFIED, _GENERATE, _FHIR_DOCS),
            ),
            (
                "DOC_RECIPIENT",
                "Document Recipient",
                (_COMPREHENSIVE, _XDS_ON_FHIR, _UNCONTAINED, _SIMPLIFIED, _GENERATE, _FHIR_DOCS),
            ),
            ("DOC_CONSUMER", "Document Consumer", (_UNCONTAINED,)),
            ("DOC_RESPONDER", "Document Responder", (_XDS_ON_FHIR, _UNCONTAINED)),
        ),
    ),
    _MobileProfile(
        keyword="PDQm",
        name="Patient Demographics Query for Mobile",
        status="TI",
        version="3.1.0",
        options_reference="ITI PDQm 1:38.2",
        actors=(
            (
                "PDC",
                "Patient Demographics Consumer",
                (("PATIENT_SEARCH", "Patient Search"), ("MATCH_OPERATION", "Match Operation")),
            ),
            ("PDS", "Patient Demographics Supplier", (("MATCH_OPERATION", "Match Operation"),)),
        ),
    ),
    _MobileProfile(
        keyword="PIXm",
        name="Patient Identifier Cross-referencing for Mobile",
        status="TI",
        version="3.0.4",
        options_reference="ITI PIXm 1:41.2",
        actors=(
            ("PAT_IDENTITY_CONSUMER", "Patient Identifier Cross-reference Consumer", ()),
            (
                "PAT_IDENTITY_X_REF_MGR",
                "Patient Identity Cross-reference Manager",
                (("REMOVE_PATIENT", "Remove Patient"),),
            ),
            (
                "PAT_IDENTITY_SRC",
                "Patient Identity Source",
                (("REMOVE_PATIENT", "Remove Patient"),),
            ),
        ),
    ),
    _MobileProfile(
        keyword="mXDE",
        name="Mobile Cross-Enterprise Document Data Element Extraction",
        status="TI",
        version="1.3.0",
        options_reference="",
        actors=(
            ("DATA_ELEMENT_EXTRACTOR", "Data Element Extractor", ()),
            ("DATA_ELEMENT_PROV_CONSUMER", "Data Element Provenance Consumer", ()),
        ),
    ),
)
MOBILE_DOMAIN = "ITI"


@dataclass(frozen=True)
class BuildStats:
    snapshot_rows: int
    duplicates_dropped: int
    mobile_rows_added: int
    total_rows: int


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _first_domain(raw: str) -> str:
    for separator in ("|", ",", ";"):
        raw = raw.replace(separator, "|")
    parts = [part.strip() for part in raw.split("|") if part.strip()]
    return parts[0] if parts else ""


def _domain_name(keyword: str) -> str:
    return DOMAIN_NAMES.get(keyword, keyword)


def _snapshot_rows(source: Path) -> tuple[list[dict[str, str]], int, int]:
    raw_rows = _read_csv(source / AIPO_FILE)
    profile_domains = {
        row["keyword"].strip(): _first_domain(row.get("domains") or "")
        for row in _read_csv(source / PROFILES_FILE)
    }
    option_references = {
        row["keyword"].strip(): (row.get("reference") or "").strip()
        for row in _read_csv(source / OPTIONS_FILE)
    }

    seen: set[tuple[str, ...]] = set()
    duplicates = 0
    rows: list[dict[str, str]] = []
    for raw in raw_rows:
        identity = tuple(raw.get(name) or "" for name in sorted(raw))
        if identity in seen:
            duplicates += 1
            continue
        seen.add(identity)
        cell = {key: (value or "").strip() for key, value in raw.items()}
        domain = (
            _first_domain(cell.get("domains", ""))
            or profile_domains.get(cell["profile_keyword"], "")
            or OTHER_DOMAIN
        )
        rows.append(
            {
                "domain_keyword": domain,
                "domain_name": _domain_name(domain),
                "profile_keyword": cell["profile_keyword"],
                "profile_name": cell["profile_name"],
                "profile_status": cell["profile_status"],
                "tf_revision": "",
                "actor_keyword": cell["actor_keyword"],
                "actor_name": cell["actor_name"],
                "option_keyword": cell["option_keyword"],
                "option_name": cell["option_name"],
                "option_reference": option_references.get(cell["option_keyword"], ""),
            }
        )
    return rows, len(raw_rows), duplicates


def _mobile_rows() -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for profile in MOBILE_PROFILES:
        for actor_keyword, actor_name, options in profile.actors:
            for option_keyword, option_name in (NONE_OPTION[:2], *options):
                rows.append(
                    {
                        "domain_keyword": MOBILE_DOMAIN,
                        "domain_name": _domain_name(MOBILE_DOMAIN),
                        "profile_keyword": profile.keyword,
                        "profile_name": profile.name,
                        "profile_status": profile.status,
                        "tf_revision": profile.version,
                        "actor_keyword": actor_keyword,
                        "actor_name": actor_name,
                        "option_keyword": option_keyword,
                        "option_name": option_name,
                        "option_reference": (
                            "" if option_keyword == NONE_OPTION[0] else profile.options_reference
                        ),
                    }
                )
    return rows


def _sort_key(row: dict[str, str]) -> tuple[str, ...]:
    # The baseline (NONE) sorts first within an actor, as the catalogue is read that way.
    return (
        row["domain_keyword"].casefold(),
        row["profile_keyword"].casefold(),
        row["profile_keyword"],
        row["actor_keyword"],
        "" if row["option_keyword"] == NONE_OPTION[0] else "1",
        row["option_keyword"],
    )


def _check_consistency(rows: Iterable[dict[str, str]]) -> None:
    triples: set[tuple[str, str, str]] = set()
    actor_names: dict[str, str] = {}
    for row in rows:
        triple = (row["profile_keyword"], row["actor_keyword"], row["option_keyword"])
        if triple in triples:
            raise SystemExit(f"two different rows for AIPO {triple}; fix the source first")
        triples.add(triple)
        known = actor_names.setdefault(row["actor_keyword"], row["actor_name"])
        if known != row["actor_name"]:
            raise SystemExit(
                f"actor {row['actor_keyword']} is named both {known!r} and {row['actor_name']!r}"
            )


def build_rows(*, source: Path) -> tuple[list[dict[str, str]], BuildStats]:
    snapshot, snapshot_count, duplicates = _snapshot_rows(source)
    existing = {(r["profile_keyword"], r["actor_keyword"], r["option_keyword"]) for r in snapshot}
    mobile = [
        row
        for row in _mobile_rows()
        if (row["profile_keyword"], row["actor_keyword"], row["option_keyword"]) not in existing
    ]
    rows = sorted(snapshot + mobile, key=_sort_key)
    _check_consistency(rows)
    stats = BuildStats(
        snapshot_rows=snapshot_count,
        duplicates_dropped=duplicates,
        mobile_rows_added=len(mobile),
        total_rows=len(rows),
    )
    return rows, stats


def render_csv(*, rows: Sequence[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def build_catalogue_bytes(*, source: Path) -> tuple[bytes, BuildStats]:
    rows, stats = build_rows(source=source)
    return render_csv(rows=rows), stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--check", action="store_true", help="compare with --output instead of writing it"
    )
    args = parser.parse_args(argv)

    content, stats = build_catalogue_bytes(source=args.source)
    print(
        f"snapshot rows: {stats.snapshot_rows}, exact duplicates dropped: "
        f"{stats.duplicates_dropped}, mobile rows added: {stats.mobile_rows_added}, "
        f"total: {stats.total_rows}"
    )
    if args.check:
        current = args.output.read_bytes() if args.output.exists() else b""
        if current != content:
            print(f"{args.output} is out of date; rerun without --check", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(content)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
