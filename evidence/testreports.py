"""Read a FHIR TestReport (JSON or XML) into a summary: pure, no database.

R5 is the default; a report whose ``testScript`` is a Reference object (R4B's shape, R5 has
a canonical URL there) is read as R4B. ``status`` and every ``result`` are checked against
their value sets here, before fhir.resources sees the file, so that the common mistake of
test engines (a Coding where FHIR wants a code) gets a message naming the JSON path and the
fix, not a pydantic type error.
"""

from __future__ import annotations

import contextlib
import functools
import json
import typing
import xml.etree.ElementTree as ET  # noqa: S405 - DOCTYPE refused below, expat stops entity bombs
from dataclasses import asdict, dataclass, field
from typing import Any

REPORT_STATUSES = ("completed", "in-progress", "waiting", "stopped", "entered-in-error")
REPORT_RESULTS = ("pass", "fail", "pending")
ACTION_RESULTS = ("pass", "skip", "fail", "warning", "error")
# Worst first: a test's outcome is the worst of its actions.
_SEVERITY = ("error", "fail", "warning", "skip", "pass")

FHIR_NS = "{http://hl7.org/fhir}"
# Elements that repeat wherever they appear; the others are read from the model.
_REPEATING = {"participant", "test", "action", "extension", "modifierExtension", "contained"}


@dataclass(frozen=True)
class ReportProblem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class TestReportInvalid(Exception):
    """The file is not a usable TestReport; ``problems`` names each JSON path."""

    __test__ = False  # not a pytest class

    def __init__(self, problems: list[ReportProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class ActionOutcome:
    kind: str  # operation | assert
    result: str
    message: str = ""


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False

    section: str  # setup | test | teardown
    name: str
    outcome: str
    actions: tuple[ActionOutcome, ...] = ()


@dataclass(frozen=True)
class TestReportSummary:
    __test__ = False

    fhir_version: str
    name: str
    status: str
    result: str
    score: float | None
    tester: str
    issued: str | None
    participants: tuple[dict, ...]
    tests: tuple[TestOutcome, ...]
    warnings: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_testreport(data: bytes) -> TestReportSummary:
    """Return the summary of a TestReport in FHIR JSON or XML, or raise TestReportInvalid."""
    warnings: list[str] = []
    resource = _load(data)
    # The FHIR R6 build renamed TestReport.name to title (the HL7 testing IG example uses it).
    if "title" in resource and "name" not in resource:
        resource["name"] = resource.pop("title")
        warnings.append("$.title: read as name (FHIR R6 spelling of TestReport.name)")
    fhir_version = "R4B" if isinstance(resource.get("testScript"), dict) else "R5"
    problems = _check_value_sets(resource)
    if problems:
        raise TestReportInvalid(problems)
    model = _validate(resource, fhir_version)
    return _summarise(model, resource, fhir_version, warnings)


def _load(data: bytes) -> dict:
    text = data.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<"):
        resource = _xml_to_json(text)
    else:
        try:
            resource = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise TestReportInvalid(
                [ReportProblem("$", f"the file is neither FHIR JSON nor FHIR XML ({exc})")]
            ) from None
    if not isinstance(resource, dict):
        raise TestReportInvalid([ReportProblem("$", "a FHIR resource is a JSON object")])
    if "resourceType" not in resource:
        raise TestReportInvalid([ReportProblem("$.resourceType", "is required")])
    kind = resource["resourceType"]
    if kind != "TestReport":
        raise TestReportInvalid([ReportProblem("$.resourceType", f"{kind!r} is not a TestReport")])
    return resource


def _xml_to_json(data: bytes) -> dict:
    if b"<!DOCTYPE" in data[:2048].upper() or b"<!ENTITY" in data.upper():
        raise TestReportInvalid([ReportProblem("$", "FHIR XML may not declare a DOCTYPE")])
    try:
        root = ET.fromstring(data)  # noqa: S314 - DOCTYPE and entities refused above
    except ET.ParseError as exc:
        raise TestReportInvalid(
            [ReportProblem("$", f"the XML is not well-formed ({exc})")]
        ) from None
    if root.tag != f"{FHIR_NS}TestReport":
        tag = root.tag.replace(FHIR_NS, "")
        raise TestReportInvalid(
            [ReportProblem("$.resourceType", f"<{tag}> is not a FHIR TestReport element")]
        )
    from fhir.resources.testreport import TestReport

    resource, _ = _xml_element(root, TestReport)
    resource["resourceType"] = "TestReport"
    return resource


def _unwrap(annotation: Any) -> tuple[bool, type | None]:
    """From a fhir.resources field annotation: whether it is a list, and its model class."""
    from fhir.resources import get_fhir_model_class

    repeats, model = False, None
    pending = [annotation]
    while pending:
        current = pending.pop()
        origin = typing.get_origin(current)
        if origin is list:
            repeats = True
        if origin is not None:
            pending.extend(arg for arg in typing.get_args(current) if arg is not type(None))
            continue
        name = getattr(current, "__name__", "")
        if isinstance(current, type) and name.endswith("Type") and model is None:
            with contextlib.suppress(Exception):  # not a FHIR model (e.g. a primitive type)
                model = get_fhir_model_class(name[: -len("Type")])
    return repeats, model


@functools.lru_cache(maxsize=512)
def _element_shape(model: type | None, name: str) -> tuple[bool, type | None]:
    """Whether the element repeats (is a JSON array) and the model of its content, read from
    the fhir.resources (R5) model; the fixed list covers elements the model does not know."""
    if model is not None:
        fields = model.model_fields
        info = fields.get(name) or next((f for f in fields.values() if f.alias == name), None)
        if info is not None:
            return _unwrap(info.annotation)
    return name in _REPEATING, None


def _xml_element(element: ET.Element, model: type | None) -> tuple[Any, dict | None]:
    """FHIR XML to FHIR JSON: the element's value, and its "_name" part (a primitive's id and
    extensions, kept next to the value as FHIR JSON does), or None."""
    children = [
        child
        for child in element
        # comments and foreign namespaces (xhtml narrative) are not data here
        if isinstance(child.tag, str) and child.tag.startswith(FHIR_NS)
    ]
    if "value" in element.attrib:  # a primitive, perhaps with an id and extensions
        extra: dict[str, Any] = {}
        if "id" in element.attrib:
            extra["id"] = element.attrib["id"]
        for child in children:
            name = child.tag[len(FHIR_NS) :]
            if name == "extension":
                extension_model = _extension_model()
                extra.setdefault("extension", []).append(_xml_element(child, extension_model)[0])
        return element.attrib["value"], extra or None
    result: dict[str, Any] = {}
    if "id" in element.attrib:
        result["id"] = element.attrib["id"]
    if "url" in element.attrib:
        result["url"] = element.attrib["url"]
    repeated: dict[str, list[dict | None]] = {}
    for child in children:
        name = child.tag[len(FHIR_NS) :]
        repeats, child_model = _element_shape(model, name)
        value, extra = _xml_element(child, child_model)
        if repeats:
            result.setdefault(name, []).append(value)
            repeated.setdefault(name, []).append(extra)
        else:
            result[name] = value
            if extra is not None:
                result[f"_{name}"] = extra
    for name, extras in repeated.items():
        if any(extra is not None for extra in extras):
            result[f"_{name}"] = extras
    return result, None


def _extension_model() -> type:
    from fhir.resources.extension import Extension

    return Extension


def _check_code(value: Any, path: str, allowed: tuple[str, ...]) -> list[ReportProblem]:
    expected = ", ".join(allowed)
    if value is None:
        return [ReportProblem(path, f"is required (one of: {expected})")]
    if isinstance(value, dict):
        code = value.get("code")
        hint = f" (send the code {code!r} itself)" if isinstance(code, str) else ""
        return [
            ReportProblem(
                path,
                f"is a Coding object, but FHIR requires a plain code here, one of: "
                f"{expected}{hint}",
            )
        ]
    if value not in allowed:
        return [ReportProblem(path, f"{value!r} is not one of: {expected}")]
    return []


def _check_value_sets(resource: dict) -> list[ReportProblem]:
    problems = _check_code(resource.get("status"), "$.status", REPORT_STATUSES)
    problems += _check_code(resource.get("result"), "$.result", REPORT_RESULTS)
    for section_path, actions in _sections(resource):
        for index, action in enumerate(actions):
            if not isinstance(action, dict):
                problems.append(ReportProblem(f"{section_path}[{index}]", "is not an object"))
                continue
            for kind in ("operation", "assert"):
                if isinstance(action.get(kind), dict):
                    problems += _check_code(
                        action[kind].get("result"),
                        f"{section_path}[{index}].{kind}.result",
                        ACTION_RESULTS,
                    )
    return problems


def _sections(resource: dict):
    for name in ("setup", "teardown"):
        section = resource.get(name)
        if isinstance(section, dict) and isinstance(section.get("action"), list):
            yield f"$.{name}.action", section["action"]
    tests = resource.get("test")
    if isinstance(tests, list):
        for index, test in enumerate(tests):
            if isinstance(test, dict) and isinstance(test.get("action"), list):
                yield f"$.test[{index}].action", test["action"]


def _json_path(location: tuple) -> str:
    path = "$"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _validate(resource: dict, fhir_version: str):
    from pydantic import ValidationError

    if fhir_version == "R4B":
        from fhir.resources.R4B.testreport import TestReport
    else:
        from fhir.resources.testreport import TestReport
    try:
        return TestReport.model_validate(resource)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = tuple(part for part in error["loc"] if part != "__root__")
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = f"is not an element of a FHIR {fhir_version} TestReport"
            problems.append(ReportProblem(_json_path(location), message))
        raise TestReportInvalid(problems) from None
    except (TypeError, ValueError) as exc:
        raise TestReportInvalid([ReportProblem("$", str(exc))]) from None


def _worst(results: list[str]) -> str:
    for severity in _SEVERITY:
        if severity in results:
            return severity
    return "pass"


def _actions(actions) -> tuple[ActionOutcome, ...]:
    outcomes = []
    for action in actions or []:
        for kind in ("operation", "assert"):
            part = getattr(action, "operation" if kind == "operation" else "assert_fhir", None)
            if part is not None:
                outcomes.append(
                    ActionOutcome(kind=kind, result=part.result, message=part.message or "")
                )
    return tuple(outcomes)


def _outcome(actions: tuple[ActionOutcome, ...], path: str, warnings: list[str]) -> str:
    """The worst of the actions; nothing was checked when there are none: skip, not pass."""
    if not actions:
        warnings.append(f"{path}: has no actions, so nothing was checked; reported as skip")
        return "skip"
    return _worst([a.result for a in actions])


def _summarise(model, resource: dict, fhir_version: str, warnings: list[str]):
    tests: list[TestOutcome] = []
    if model.setup is not None:
        actions = _actions(model.setup.action)
        tests.append(TestOutcome("setup", "Setup", _outcome(actions, "$.setup", warnings), actions))
    for index, test in enumerate(model.test or []):
        actions = _actions(test.action)
        name = test.name or f"Test {index + 1}"
        outcome = _outcome(actions, f"$.test[{index}]", warnings)
        tests.append(TestOutcome("test", name, outcome, actions))
    if model.teardown is not None:
        actions = _actions(model.teardown.action)
        outcome = _outcome(actions, "$.teardown", warnings)
        tests.append(TestOutcome("teardown", "Teardown", outcome, actions))
    participants = tuple(
        {"type": p.type, "uri": p.uri, "display": p.display or ""}
        for p in (model.participant or [])
    )
    return TestReportSummary(
        fhir_version=fhir_version,
        name=model.name or "",
        status=model.status,
        result=model.result,
        score=float(model.score) if model.score is not None else None,
        tester=model.tester or "",
        issued=resource.get("issued"),
        participants=participants,
        tests=tuple(tests),
        warnings=tuple(warnings),
    )
