from __future__ import annotations

import ast
import csv
import io
import pickle
from collections import Counter
from pathlib import Path

import pytest

from cas.catalogue import read_catalogue
from evidence.importers import (
    GRADE_LABELS,
    GRADES,
    PASSING_GRADES,
    ImportRefused,
    ResultRow,
    RowError,
    iter_results_csv,
    normalise_grade,
    parse_results_csv,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "evidence" / "data" / "sample_connectathon_2026.csv"
GRADES_FILE = REPO_ROOT / "evidence" / "data" / "result_grades.csv"

HEADER = "Organisation,System,Profile,Actor,Option,Type,Results,R/O,V,W,P,F"


def _text(*rows: str, header: str = HEADER) -> io.StringIO:
    return io.StringIO("\n".join([header, *rows]) + "\n")


def _refusal(stream) -> ImportRefused:
    with pytest.raises(ImportRefused) as caught:
        parse_results_csv(stream=stream)
    return caught.value


@pytest.mark.parametrize(
    ("text", "grade"),
    [
        ("Pass", "passed"),
        ("Failed", "failed"),
        ("Fail", "failed"),
        ("At risk", "at_risk"),
        ("Withdrawn", "withdrawn"),
        ("Option Not Graded", "not_graded"),
        ("No Peer", "no_peer"),
        ("Did Not Complete", "did_not_complete"),
    ],
)
def test_it_maps_each_gazelle_ui_label_to_one_grade(text, grade):
    assert normalise_grade(text) == grade


@pytest.mark.parametrize(
    ("text", "grade"),
    [
        ("passed", "passed"),
        ("failed", "failed"),
        ("atrisk", "at_risk"),
        ("withdrawn", "withdrawn"),
        ("nograding", "not_graded"),
        ("nopeer", "no_peer"),
    ],
)
def test_it_maps_each_gazelle_tm_keyword_to_the_same_grades(text, grade):
    assert normalise_grade(text) == grade


def test_it_ignores_case_and_spacing_when_reading_a_grade():
    assert normalise_grade("  NO   PEER ") == "no_peer"
    assert normalise_grade("at_risk") == "at_risk"
    assert normalise_grade("did-not-complete") == "did_not_complete"
    assert normalise_grade("gazelle.tm.testing.results.resultStatusPassed") == "passed"
    assert normalise_grade("Maybe") is None
    assert normalise_grade("") is None


def test_it_exposes_one_label_per_grade_and_only_pass_as_passing():
    assert set(GRADE_LABELS) == set(GRADES)
    assert len(GRADES) == 7
    assert set(PASSING_GRADES) == {"passed"}
    for grade, label in GRADE_LABELS.items():
        assert normalise_grade(label) == grade


def test_it_ships_a_grade_vocabulary_file_that_matches_the_constants():
    with GRADES_FILE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["grade"] for row in rows] == list(GRADES)
    assert {row["grade"]: row["label"] for row in rows} == GRADE_LABELS
    assert {row["grade"] for row in rows if row["passing"] == "true"} == PASSING_GRADES
    for row in rows:
        if row["gazelle_keyword"]:
            assert normalise_grade(row["gazelle_keyword"]) == row["grade"]


def test_it_returns_every_row_of_a_good_file():
    rows = parse_results_csv(
        stream=_text(
            "Helix Health Systems,HelixEHR,XDS.b,DOC_CONSUMER,NONE,Thorough,Pass,3,3,0,0,0",
            "Helix Health Systems,HelixEHR,PDQm,PDC,,Thorough,nopeer,2,0,0,0,0",
            "Northwind Medical,NW-Repository,MHD,DOC_RESPONDER,XDS_ON_FHIR,"
            "Thorough,Withdrawn,2,0,1,0,0",
        )
    )
    assert [row.line for row in rows] == [2, 3, 4]
    first = rows[0]
    assert first == ResultRow(
        line=2,
        organisation="Helix Health Systems",
        system="HelixEHR",
        profile="XDS.b",
        actor="DOC_CONSUMER",
        option="NONE",
        type="Thorough",
        grade="passed",
        raw_grade="Pass",
        counts=(("R/O", 3), ("V", 3), ("W", 0), ("P", 0), ("F", 0)),
    )
    assert first.passed and first.aipo == ("XDS.b", "DOC_CONSUMER", "NONE")
    assert first.count("V") == 3 and first.count("X") is None
    assert rows[1].option == "NONE" and rows[1].grade == "no_peer"
    assert rows[2].grade == "withdrawn" and not rows[2].passed
    assert len(set(rows)) == 3


def test_it_accepts_organization_spelling_and_header_case_and_spaces():
    stream = _text(
        "Acme,AcmeEHR,CT,TIME_CLIENT,NONE,Thorough,Pass",
        header=" ORGANIZATION , system,PROFILE, Actor ,option,TYPE,  results ",
    )
    [row] = parse_results_csv(stream=stream)
    assert (row.organisation, row.system, row.grade, row.counts) == (
        "Acme",
        "AcmeEHR",
        "passed",
        (),
    )


def test_it_handles_a_utf8_bom_in_a_bytes_stream():
    payload = (HEADER + "\nÅrhus Sundhed,ÅrhusEHR,ATNA,SN,NONE,Thorough,Pass,1,1,0,0,0\n").encode(
        "utf-8-sig"
    )
    assert payload.startswith(b"\xef\xbb\xbf")
    [row] = parse_results_csv(stream=io.BytesIO(payload))
    assert row.organisation == "Århus Sundhed"
    assert row.aipo == ("ATNA", "SN", "NONE")


def test_it_handles_a_bom_in_a_text_stream_and_plain_utf8_bytes():
    text = "\ufeff" + HEADER + "\nAcme,AcmeEHR,CT,TIME_CLIENT,NONE,Thorough,Pass,1,1,0,0,0\n"
    assert parse_results_csv(stream=io.StringIO(text))[0].organisation == "Acme"
    plain = text.removeprefix("\ufeff").encode("utf-8")
    assert parse_results_csv(stream=io.BytesIO(plain))[0].organisation == "Acme"


def test_it_reads_a_semicolon_separated_export():
    stream = _text(
        "Acme;AcmeEHR;CT;TIME_CLIENT;NONE;Thorough;Pass;1;1;0;0;0",
        header=HEADER.replace(",", ";"),
    )
    assert parse_results_csv(stream=stream)[0].grade == "passed"


def test_it_refuses_an_unknown_grade_naming_line_column_and_the_expected_grades():
    refusal = _refusal(
        _text(
            "Acme,AcmeEHR,CT,TIME_CLIENT,NONE,Thorough,Pass,1,1,0,0,0",
            "Acme,AcmeEHR,ATNA,SN,NONE,Thorough,Maybe,1,1,0,0,0",
        )
    )
    assert str(refusal) == "1 bad row; nothing was imported"
    [error] = refusal.errors
    assert (error.line, error.column, error.value) == (3, "Results", "Maybe")
    assert str(error) == (
        "line 3, column Results: 'Maybe' is not a known grade (expected one of: Pass, Failed, "
        "At Risk, Withdrawn, Option Not Graded, No Peer, Did Not Complete)"
    )


def test_it_refuses_a_file_missing_required_columns_with_a_line_one_error():
    refusal = _refusal(
        _text("Acme,AcmeEHR,CT,TIME_CLIENT,NONE", header="Organisation,System,Profile,Actor,Option")
    )
    [error] = refusal.errors
    assert error.line == 1
    assert "missing required column(s): Type, Results" in str(error)
    assert str(error).startswith("line 1: ")


def test_it_refuses_an_empty_file():
    [error] = _refusal(io.BytesIO(b"")).errors
    assert error.line == 1 and "empty" in error.message


def test_it_refuses_empty_required_cells_naming_each_column():
    refusal = _refusal(_text(" ,AcmeEHR,CT,,NONE,Thorough, ,1,1,0,0,0"))
    assert [(e.line, e.column) for e in refusal.errors] == [
        (2, "Organisation"),
        (2, "Actor"),
        (2, "Results"),
    ]
    assert str(refusal) == "1 bad row; nothing was imported"


def test_it_refuses_a_counter_that_is_not_a_whole_number():
    refusal = _refusal(_text("Acme,AcmeEHR,CT,TIME_CLIENT,NONE,Thorough,Pass,1,two,0,-1,0"))
    assert [(e.line, e.column, e.value) for e in refusal.errors] == [
        (2, "V", "two"),
        (2, "P", "-1"),
    ]
    assert str(refusal.errors[0]) == "line 2, column V: 'two' is not a whole number of tests"


def test_it_counts_a_blank_counter_cell_as_zero():
    [row] = parse_results_csv(stream=_text("Acme,AcmeEHR,CT,TIME_CLIENT,NONE,Thorough,Pass,1,,,,"))
    assert row.counts == (("R/O", 1), ("V", 0), ("W", 0), ("P", 0), ("F", 0))


def test_it_refuses_a_duplicate_aipo_for_one_system_naming_both_lines():
    refusal = _refusal(
        _text(
            "Acme,AcmeEHR,XDS.b,DOC_CONSUMER,NONE,Thorough,Pass,1,1,0,0,0",
            "Acme,AcmeEHR,CT,TIME_CLIENT,NONE,Thorough,Pass,1,1,0,0,0",
            "Acme,AcmeEHR,XDS.b,DOC_CONSUMER,,Thorough,No Peer,1,0,0,0,0",
        )
    )
    [error] = refusal.errors
    assert error.line == 4
    assert "duplicate of line 2" in str(error)
    assert str(error).startswith("line 4: ")


def test_it_allows_the_same_aipo_for_different_systems():
    rows = parse_results_csv(
        stream=_text(
            "Acme,AcmeEHR,XDS.b,DOC_CONSUMER,NONE,Thorough,Pass,1,1,0,0,0",
            "Acme,AcmePACS,XDS.b,DOC_CONSUMER,NONE,Thorough,Pass,1,1,0,0,0",
        )
    )
    assert len(rows) == 2


def test_it_lists_every_bad_row_in_one_refusal():
    refusal = _refusal(
        _text(
            "Acme,AcmeEHR,CT,TIME_CLIENT,NONE,Thorough,Pass,1,1,0,0,0",
            "Acme,AcmeEHR,ATNA,SN,NONE,Thorough,Perhaps,1,1,0,0,0",
            "",
            "Acme,,PIX,PDC,NONE,Thorough,Pass,1,1,0,0,0",
            "Acme,AcmeEHR,PDQ,PDC,NONE,Thorough,Pass,x,1,0,0,0",
            "Acme,AcmeEHR,CT,TIME_CLIENT,NONE,Supportive,Failed,1,0,0,0,1",
        )
    )
    assert str(refusal) == "4 bad rows; nothing was imported"
    assert [(e.line, e.column) for e in refusal.errors] == [
        (3, "Results"),
        (5, "System"),
        (6, "R/O"),
        (7, ""),
    ]


def test_it_counts_lines_of_quoted_multiline_cells_when_reporting():
    refusal = _refusal(
        _text(
            '"Acme\nHealth",AcmeEHR,CT,TIME_CLIENT,NONE,Thorough,Pass,1,1,0,0,0',
            "Acme,AcmeEHR,ATNA,SN,NONE,Thorough,Nope,1,1,0,0,0",
        )
    )
    assert [e.line for e in refusal.errors] == [4]


def test_it_refuses_a_file_that_is_not_utf8():
    payload = (HEADER + "\nAcme,AcmeEHR,CT,TIME_CLIENT,NONE,Thorough,Pass,1,1,0,0,0\n").encode()
    payload += "Århus,ÅrhusEHR,ATNA,SN,NONE,Thorough,Pass,1,1,0,0,0\n".encode("latin-1")
    [error] = _refusal(io.BytesIO(payload)).errors
    assert error.line == 3 and "UTF-8" in error.message


def test_it_streams_rows_and_errors_in_file_order():
    items = list(
        iter_results_csv(
            stream=_text(
                "Acme,AcmeEHR,CT,TIME_CLIENT,NONE,Thorough,Pass,1,1,0,0,0",
                "Acme,AcmeEHR,ATNA,SN,NONE,Thorough,Maybe,1,1,0,0,0",
                "Acme,AcmeEHR,PDQ,PDC,NONE,Thorough,nopeer,1,0,0,0,0",
            )
        )
    )
    assert [type(item) for item in items] == [ResultRow, RowError, ResultRow]


def test_it_keeps_the_errors_when_a_refusal_is_pickled_for_a_background_task():
    refusal = _refusal(_text("Acme,AcmeEHR,ATNA,SN,NONE,Thorough,Maybe,1,1,0,0,0"))
    restored = pickle.loads(pickle.dumps(refusal))  # noqa: S301 - our own object
    assert restored.errors == refusal.errors
    assert str(restored) == str(refusal)


def test_it_parses_the_sample_event_file_and_every_aipo_resolves_in_the_catalogue():
    with SAMPLE.open("rb") as handle:
        rows = parse_results_csv(stream=handle)
    assert 55 <= len(rows) <= 70
    catalogue = {row.aipo for row in read_catalogue()}
    assert [row.aipo for row in rows if row.aipo not in catalogue] == []
    grades = Counter(row.grade for row in rows)
    assert grades["passed"] > len(rows) / 2
    assert {"no_peer", "did_not_complete", "withdrawn"} <= set(grades)
    organisations = {row.organisation for row in rows}
    assert {"Helix Health Systems", "Northwind Medical"} <= organisations
    assert len(organisations) >= 5


def test_it_gives_the_demo_vendors_the_passes_their_claims_need():
    with SAMPLE.open("rb") as handle:
        passed = {
            (row.organisation, row.system, *row.aipo)
            for row in parse_results_csv(stream=handle)
            if row.passed
        }
    helix, northwind = "Helix Health Systems", "Northwind Medical"
    assert {
        (helix, "HelixEHR", "XDS.b", "DOC_CONSUMER", "NONE"),
        (helix, "HelixEHR", "PDQm", "PDC", "NONE"),
        (helix, "HelixEHR", "ATNA", "SN", "NONE"),
        (helix, "HelixEHR", "CT", "TIME_CLIENT", "NONE"),
        (northwind, "NW-Repository", "XDS.b", "DOC_REPOSITORY", "NONE"),
        (northwind, "NW-Repository", "XDS.b", "DOC_REGISTRY", "NONE"),
        (northwind, "NW-Repository", "MHD", "DOC_RESPONDER", "NONE"),
    } <= passed


def test_it_parses_without_django():
    source = (REPO_ROOT / "evidence" / "importers.py").read_text(encoding="utf-8")
    modules = {
        name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert "django" not in modules
