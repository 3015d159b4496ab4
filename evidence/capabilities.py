"""Which AIPOs a FHIR CapabilityStatement declares: pure, no database.

IHE implementation guides publish one CapabilityStatement per actor, under a canonical URL
(https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentResponder). A system's
own CapabilityStatement names the ones it implements in ``instantiates`` (or ``imports``);
evidence/data/ihe_capabilitystatements.csv maps each canonical to a catalogue AIPO. New IGs
are a new row there.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "data" / "ihe_capabilitystatements.csv"


class CapabilityStatementInvalid(Exception):
    pass


@functools.cache
def canonical_table() -> dict[str, tuple[str, str, str]]:
    with TABLE.open(encoding="utf-8", newline="") as handle:
        return {
            row["canonical"].strip(): (row["profile"], row["actor"], row["option"] or "NONE")
            for row in csv.DictReader(handle)
        }


def capability_canonicals(data: bytes) -> list[str]:
    """The canonical URLs a CapabilityStatement instantiates or imports, versions dropped."""
    try:
        resource = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CapabilityStatementInvalid(
            f"$: the file is not FHIR JSON ({exc}); upload the CapabilityStatement as JSON."
        ) from None
    if not isinstance(resource, dict) or resource.get("resourceType") != "CapabilityStatement":
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        raise CapabilityStatementInvalid(f"$.resourceType: {kind!r} is not a CapabilityStatement.")
    found: list[str] = []
    for element in ("instantiates", "imports"):
        values = resource.get(element, [])
        if not isinstance(values, list):
            raise CapabilityStatementInvalid(f"$.{element}: must be a list of canonical URLs.")
        for index, value in enumerate(values):
            if not isinstance(value, str):
                raise CapabilityStatementInvalid(
                    f"$.{element}[{index}]: must be a canonical URL string."
                )
            canonical = value.split("|", 1)[0].strip()
            if canonical and canonical not in found:
                found.append(canonical)
    if not found:
        raise CapabilityStatementInvalid(
            "$.instantiates: the CapabilityStatement declares no IHE CapabilityStatement "
            "(nothing in instantiates or imports)."
        )
    return found
