from __future__ import annotations

import ast
import importlib.util
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest

from cas.catalogue import COLUMNS, DEFAULT_PATH, CatalogueRow, read_catalogue

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_CATALOG = REPO_ROOT / ".." / "shared" / "data" / "ihe-catalog"
SNAPSHOT_AIPOS = 1321


@pytest.fixture(scope="module")
def catalogue() -> list[CatalogueRow]:
    return read_catalogue()


@pytest.fixture(scope="module")
def by_aipo(catalogue: list[CatalogueRow]) -> dict[tuple[str, str, str], CatalogueRow]:
    return {row.aipo: row for row in catalogue}


def _load_build_script() -> ModuleType:
    path = REPO_ROOT / "scripts" / "build_catalogue.py"
    spec = importlib.util.spec_from_file_location("build_catalogue_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the file executes.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_it_ships_every_snapshot_aipo_plus_the_mobile_profiles(catalogue):
    snapshot_rows = [row for row in catalogue if not row.tf_revision]
    assert len(snapshot_rows) == SNAPSHOT_AIPOS
    assert len(catalogue) >= SNAPSHOT_AIPOS + 30


def test_it_reads_the_shipped_file_next_to_the_module_by_default():
    assert DEFAULT_PATH == REPO_ROOT / "cas" / "data" / "ihe_catalogue.csv"
    header = DEFAULT_PATH.read_text(encoding="utf-8").splitlines()[0]
    assert tuple(header.split(",")) == COLUMNS


def test_it_includes_the_xds_b_document_consumer_baseline(by_aipo):
    row = by_aipo[("XDS.b", "DOC_CONSUMER", "NONE")]
    assert row.domain_keyword == "ITI"
    assert row.domain_name == "IT Infrastructure"
    assert row.profile_name == "Cross-Enterprise Document Sharing"
    assert row.profile_status == "FT"
    assert row.actor_name == "Document Consumer"
    assert row.option_name == "None"
    assert row.tf_revision == ""
    assert row.is_baseline


def test_it_includes_the_mobile_profiles_with_their_actors(by_aipo):
    expected = {
        "MHD": {"DOC_SOURCE", "DOC_RECIPIENT", "DOC_CONSUMER", "DOC_RESPONDER"},
        "PDQm": {"PDC", "PDS"},
        "PIXm": {"PAT_IDENTITY_CONSUMER", "PAT_IDENTITY_X_REF_MGR", "PAT_IDENTITY_SRC"},
        "mXDE": {"DATA_ELEMENT_EXTRACTOR", "DATA_ELEMENT_PROV_CONSUMER"},
    }
    for profile, actors in expected.items():
        baseline_actors = {
            actor for (p, actor, option) in by_aipo if p == profile and option == "NONE"
        }
        assert baseline_actors == actors, profile
        for actor in actors:
            row = by_aipo[(profile, actor, "NONE")]
            assert row.domain_keyword == "ITI"
            assert row.profile_status == "TI"
            assert row.tf_revision, (profile, actor)


def test_it_records_the_implementation_guide_version_of_each_mobile_profile(by_aipo):
    versions = {
        profile: {row.tf_revision for (p, _, _), row in by_aipo.items() if p == profile}
        for profile in ("MHD", "PDQm", "PIXm", "mXDE")
    }
    assert versions == {"MHD": {"4.2.3"}, "PDQm": {"3.1.0"}, "PIXm": {"3.0.4"}, "mXDE": {"1.3.0"}}


def test_it_adds_the_named_mobile_options_with_a_reference(by_aipo):
    for aipo in [
        ("MHD", "DOC_RESPONDER", "XDS_ON_FHIR"),
        ("MHD", "DOC_SOURCE", "COMPREHENSIVE_METADATA"),
        ("PDQm", "PDC", "PATIENT_SEARCH"),
        ("PDQm", "PDS", "MATCH_OPERATION"),
        ("PIXm", "PAT_IDENTITY_SRC", "REMOVE_PATIENT"),
    ]:
        assert by_aipo[aipo].option_reference, aipo


def test_it_reuses_snapshot_actor_keywords_for_the_same_role(catalogue):
    names: dict[str, set[str]] = defaultdict(set)
    for row in catalogue:
        names[row.actor_keyword].add(row.actor_name)
    assert {k: v for k, v in names.items() if len(v) > 1} == {}
    snapshot_actors = {row.actor_keyword for row in catalogue if not row.tf_revision}
    assert {"DOC_CONSUMER", "PDC", "PDS", "PAT_IDENTITY_SRC"} <= snapshot_actors


def test_it_keeps_the_tf_revision_empty_for_snapshot_rows(by_aipo):
    assert by_aipo[("PIX", "PAT_IDENTITY_X_REF_MGR", "NONE")].tf_revision == ""
    assert by_aipo[("CT", "TIME_CLIENT", "NONE")].tf_revision == ""


def test_it_takes_the_first_domain_when_a_profile_lists_several(catalogue):
    domains = {row.domain_keyword for row in catalogue if row.profile_keyword == "SEC"}
    assert domains == {"ITI"}


def test_it_files_profiles_without_any_recorded_domain_under_other(catalogue):
    other = {row.profile_keyword for row in catalogue if row.domain_keyword == "OTHER"}
    assert other == {"EPSOS-IS", "HITSPIHE", "ICP", "LSWF", "SMD", "TP13"}
    assert {row.domain_name for row in catalogue if row.domain_keyword == "OTHER"} == {
        "Other (no domain recorded)"
    }


def test_it_gives_every_domain_keyword_one_full_name(catalogue):
    names = {row.domain_keyword: row.domain_name for row in catalogue}
    assert names["PCC"] == "Patient Care Coordination"
    assert names["QRPH"] == "Quality, Research and Public Health"
    assert names["EYE"] == "Eye Care"
    assert names["PATH"] == "Anatomic Pathology"
    assert all(name for name in names.values())


def test_it_has_no_surrounding_whitespace_in_any_cell(catalogue):
    for row in catalogue:
        for name in COLUMNS:
            value = getattr(row, name)
            assert value == value.strip(), (row.aipo, name)


def test_it_rebuilds_byte_for_byte_from_the_shared_data():
    if not (SHARED_CATALOG / "gazelle_tm_aipo_2011snapshot.csv").is_file():
        pytest.skip(f"shared source data not present at {SHARED_CATALOG.resolve()}")
    build = _load_build_script()
    content, stats = build.build_catalogue_bytes(source=SHARED_CATALOG)
    assert content == DEFAULT_PATH.read_bytes()
    assert stats.snapshot_rows == SNAPSHOT_AIPOS
    assert stats.duplicates_dropped == 0
    assert stats.total_rows == stats.snapshot_rows + stats.mobile_rows_added


def test_it_drops_exact_duplicate_snapshot_rows_and_counts_them(tmp_path):
    if not SHARED_CATALOG.is_dir():
        pytest.skip(f"shared source data not present at {SHARED_CATALOG.resolve()}")
    build = _load_build_script()
    for path in SHARED_CATALOG.glob("*.csv"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    aipo_file = tmp_path / build.AIPO_FILE
    lines = aipo_file.read_text(encoding="utf-8").splitlines(keepends=True)
    aipo_file.write_text("".join([*lines, lines[5], lines[9]]), encoding="utf-8")
    content, stats = build.build_catalogue_bytes(source=tmp_path)
    assert stats.duplicates_dropped == 2
    assert content == DEFAULT_PATH.read_bytes()


def test_it_refuses_a_catalogue_with_an_empty_required_cell(tmp_path):
    lines = DEFAULT_PATH.read_text(encoding="utf-8").splitlines()
    cells = lines[3].split(",")
    cells[COLUMNS.index("actor_name")] = " "
    broken = tmp_path / "catalogue.csv"
    broken.write_text("\n".join([*lines[:3], ",".join(cells)]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 4, column actor_name: value is empty"):
        read_catalogue(path=broken)


def test_it_refuses_a_catalogue_missing_a_column(tmp_path):
    broken = tmp_path / "catalogue.csv"
    header = ",".join(name for name in COLUMNS if name != "profile_status")
    broken.write_text(header + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 1: missing column\(s\): profile_status"):
        read_catalogue(path=broken)


def test_it_refuses_a_catalogue_listing_an_aipo_twice(tmp_path):
    lines = DEFAULT_PATH.read_text(encoding="utf-8").splitlines()
    broken = tmp_path / "catalogue.csv"
    broken.write_text("\n".join([*lines[:3], lines[2]]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 4, column option_keyword: .* on line 3"):
        read_catalogue(path=broken)


def test_it_reads_the_catalogue_without_django():
    source = (REPO_ROOT / "cas" / "catalogue.py").read_text(encoding="utf-8")
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    }
    assert "django" not in imported
