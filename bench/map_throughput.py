"""Mapping throughput: the adapter's full path against a plain-dict baseline that emits the same bytes.

    python bench/map_throughput.py [N] [--runs 5]

N synthetic clients (default 10,000), each a client record and a PHQ-9 administration (every 7th with item 9
positive, which adds a risk Flag), plus the shared directory (clinic, program, clinician).

(a) full path: record JSON bytes -> strict record validation + scoring -> chart assembly -> mapping ->
    compiled FHIR validation of every resource -> orjson bytes.
(b) baseline: the same input bytes -> orjson.loads -> hand-built dicts of the same resources -> orjson bytes.
    No validation, no catalog, no models. Before timing, (b)'s output is checked byte-equal to (a)'s.

Both variants run back to back in every run (same noise); the ratio a/b is reported as the median of the per-run
ratios with min..max. Figures are printed, never asserted: this is not a test.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapter import fhir
from adapter.pipeline import context, map_chart, map_charts
from adapter.records.chart import assemble
from adapter.records.loader import parse_json
from adapter.settings import Settings

PHQ9_ITEMS = ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3", "44260-8")
PHQ9_ITEM_TEXT = (
    "Little interest or pleasure in doing things",
    "Feeling down, depressed, or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself, or that you are a failure",
    "Trouble concentrating on things",
    "Moving or speaking slowly, or being fidgety or restless",
    "Thoughts that you would be better off dead, or of hurting yourself",
)


def directory_records() -> list[dict[str, Any]]:
    return [
        {"kind": "organization", "id": "clinic", "name": "Bench Clinic", "npi": "1234567893", "type": "prov"},
        {
            "kind": "program",
            "id": "mh",
            "name": "Outpatient mental health",
            "organization": "clinic",
            "part2_program": False,
        },
        {
            "kind": "practitioner",
            "id": "dr",
            "name": {"family": "Bench", "given": ["Dana"]},
            "npi": "1245319599",
            "credentials": ["LCSW"],
        },
    ]


def client_records(i: int) -> list[dict[str, Any]]:
    answers = {str(k + 1): (i + k) % 4 for k in range(9)}
    answers["9"] = 1 if i % 7 == 0 else 0
    return [
        {
            "kind": "client",
            "id": f"c{i}",
            "program": "mh",
            "identifiers": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": f"MRN{i:07d}", "type": "MR"}],
            "names": [{"family": f"Family{i}", "given": ["Given"]}],
            "birth_date": "1988-04-12",
            "gender": "female",
        },
        {
            "kind": "assessment",
            "id": f"a{i}",
            "client": f"c{i}",
            "program": "mh",
            "instrument": "phq-9",
            "administered_at": "2026-03-02T09:30:00-05:00",
            "administered_by": "dr",
            "answers": answers,
        },
    ]


def make_input(n: int) -> bytes:
    records = directory_records()
    for i in range(n):
        records += client_records(i)
    return orjson.dumps({"records": records})


# ------------------------------------------------------------------------------------------------ (a) full path
def full_path(data: bytes, settings: Settings) -> tuple[int, list[bytes]]:
    loaded = parse_json(data, source="bench.json")
    clinic = assemble(loaded.records)
    ctx = context(clinic, settings)
    dumps = fhir.dumps
    count = 0
    first: list[bytes] = []
    for mapped in map_charts(clinic, ctx):
        if isinstance(mapped, Exception):
            raise mapped
        out = [dumps(r) for r in mapped.resources]
        count += len(out)
        if not first:
            first = out
    return count, first


# ------------------------------------------------------------------------------------------------ (b) baseline
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SCREEN = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-screening-assessment"
ANSWERS = (
    ("LA6568-5", "Not at all"),
    ("LA6569-3", "Several days"),
    ("LA6570-1", "More than half the days"),
    ("LA6571-9", "Nearly every day"),
)
BANDS = (
    (4, "LA6708-7", "0-4 = None"),
    (9, "LA6709-5", "5-9 = Mild depression"),
    (14, "LA6710-3", "10-14 = Moderate depression"),
    (19, "LA6711-1", "15-19 = Moderately severe depression"),
    (27, "LA6712-9", "20-27 = Severe depression"),
)
PANEL_DISPLAY = "PHQ-9 quick depression assessment panel [Reported.PHQ]"
TOTAL_DISPLAY = "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"


def baseline(data: bytes, settings: Settings, reference: dict[str, Any]) -> tuple[int, list[bytes]]:
    """Hand-built dicts of the same resources. `reference` carries the resources the baseline copies verbatim
    (directory, Patient skeleton) to keep this script short; per-client content is built here."""
    ns = settings.id_namespace
    base = settings.fhir_base

    def rid(*key: str) -> str:
        return str(uuid.uuid5(ns, "|".join(key)))

    doc = orjson.loads(data)
    records = doc["records"]
    count = 0
    first: list[bytes] = []
    dumps = orjson.dumps
    dr_ref = {"reference": f"Practitioner/{rid('Practitioner', 'dr')}"}
    survey = reference["survey"]
    source = f"{base}/Organization/{rid('Organization', 'program', 'mh')}"
    for k in range(3, len(records), 2):
        client, asm = records[k], records[k + 1]
        cid, aid = client["id"], asm["id"]
        patient_ref = {"reference": f"Patient/{rid('Patient', cid)}"}
        ident = client["identifiers"][0]
        patient = {
            "resourceType": "Patient",
            "id": rid("Patient", cid),
            "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"], "source": source},
            "identifier": [{"type": reference["mr_type"], "system": ident["system"], "value": ident["value"]}],
            "active": True,
            "name": [{"family": client["names"][0]["family"], "given": client["names"][0]["given"]}],
            "gender": client["gender"],
            "birthDate": client["birth_date"],
            "managingOrganization": reference["clinic_ref"],
        }
        qr_id = rid("QuestionnaireResponse", aid)
        derived = [{"reference": f"QuestionnaireResponse/{qr_id}"}]
        values = [asm["answers"][str(i + 1)] for i in range(9)]
        total = sum(values)
        common = {"status": "final", "category": [survey]}
        items = []
        for i, value in enumerate(values):
            code, display = ANSWERS[value]
            items.append(
                {
                    "resourceType": "Observation",
                    "id": rid("Observation", aid, "item", str(i + 1)),
                    "meta": {"profile": [SCREEN], "source": source},
                    **common,
                    "code": {
                        "coding": [{"system": LOINC, "code": PHQ9_ITEMS[i], "display": PHQ9_ITEM_TEXT[i]}],
                        "text": PHQ9_ITEM_TEXT[i],
                    },
                    "subject": patient_ref,
                    "effectiveDateTime": asm["administered_at"],
                    "performer": [dr_ref],
                    "valueCodeableConcept": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                    "derivedFrom": derived,
                }
            )
        band = next(b for b in BANDS if total <= b[0])
        total_obs = {
            "resourceType": "Observation",
            "id": rid("Observation", aid, "total"),
            "meta": {"profile": [SCREEN], "source": source},
            **common,
            "code": {"coding": [{"system": LOINC, "code": "44261-6", "display": TOTAL_DISPLAY}], "text": TOTAL_DISPLAY},
            "subject": patient_ref,
            "effectiveDateTime": asm["administered_at"],
            "performer": [dr_ref],
            "valueQuantity": {"value": total, "unit": "{score}", "system": UCUM, "code": "{score}"},
            "interpretation": [{"coding": [{"system": LOINC, "code": band[1], "display": band[2]}], "text": band[2]}],
            "derivedFrom": derived,
        }
        members = [*items, total_obs]
        panel = {
            "resourceType": "Observation",
            "id": rid("Observation", aid, "panel"),
            "meta": {"profile": [SCREEN], "source": source},
            **common,
            "code": {"coding": [{"system": LOINC, "code": "44249-1", "display": PANEL_DISPLAY}], "text": PANEL_DISPLAY},
            "subject": patient_ref,
            "effectiveDateTime": asm["administered_at"],
            "performer": [dr_ref],
            "hasMember": [{"reference": f"Observation/{m['id']}"} for m in members],
            "derivedFrom": derived,
        }
        qr_items = [
            {
                "linkId": f"/{PHQ9_ITEMS[i]}",
                "text": PHQ9_ITEM_TEXT[i],
                "answer": [{"valueCoding": {"system": LOINC, "code": ANSWERS[v][0], "display": ANSWERS[v][1]}}],
            }
            for i, v in enumerate(values)
        ]
        qr_items.append({"linkId": "/44261-6", "text": TOTAL_DISPLAY, "answer": [{"valueInteger": total}]})
        qr = {
            "resourceType": "QuestionnaireResponse",
            "id": qr_id,
            "meta": {
                "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-questionnaireresponse"],
                "source": source,
            },
            "identifier": {"system": f"{base}/sid/assessment", "value": aid},
            "questionnaire": "http://loinc.org/q/44249-1",
            "status": "completed",
            "subject": patient_ref,
            "authored": asm["administered_at"],
            "author": dr_ref,
            "item": qr_items,
        }
        out_resources: list[dict[str, Any]] = [patient, qr, panel, *members]
        if values[8] > 0:
            flag = dict(reference["flag_template"])
            flag["id"] = rid("Flag", aid, "risk")
            flag["meta"] = {"source": source}
            flag["extension"] = [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/flag-detail",
                    "valueReference": {"reference": f"Observation/{items[8]['id']}"},
                },
                reference["flag_priority"],
            ]
            flag["identifier"] = [{"system": f"{base}/sid/assessment-risk", "value": aid}]
            flag["subject"] = patient_ref
            flag["period"] = {"start": asm["administered_at"]}
            flag["author"] = dr_ref
            out_resources.append(flag)
        clinical = out_resources
        provenance = dict(reference["provenance_template"])
        provenance["id"] = rid("Provenance", "batch", cid)
        provenance["target"] = [{"reference": f"{r['resourceType']}/{r['id']}"} for r in clinical]
        provenance["recorded"] = asm["administered_at"]
        out = [dumps(r) for r in (*clinical, *reference["directory"], provenance)]
        count += len(out)
        if not first:
            first = out
    return count, first


def reference_parts(data: bytes, settings: Settings) -> dict[str, Any]:
    """Pieces the baseline copies verbatim from one mapped client: shared directory and fixed templates."""
    loaded = parse_json(data, source="bench.json")
    clinic = assemble(loaded.records)
    ctx = context(clinic, settings)
    flagged = next(c for c in clinic.charts if c.client.id == "c0")
    resources = map_chart(flagged, ctx).resources
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    flag = {k: v for k, v in by_type["Flag"][0].items()}
    panel = by_type["Observation"][0]
    return {
        "directory": [r for r in resources if r["resourceType"] in ("Organization", "Practitioner")],
        "mr_type": by_type["Patient"][0]["identifier"][0]["type"],
        "clinic_ref": by_type["Patient"][0]["managingOrganization"],
        "survey": panel["category"][0],
        "flag_template": flag,
        "flag_priority": flag["extension"][-1],
        "provenance_template": {k: v for k, v in by_type["Provenance"][0].items()},
    }


def timed(fn: Callable[[], tuple[int, list[bytes]]]) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    count, _ = fn()
    return time.perf_counter() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", nargs="?", type=int, default=10_000, help="synthetic clients")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    settings = Settings()
    data = make_input(args.n)
    small = make_input(14)
    ref = reference_parts(small, settings)
    _, a_first = full_path(small, settings)
    _, b_first = baseline(small, settings, ref)
    if a_first != b_first:
        sys.exit("baseline output differs from the full path: fix the baseline before trusting the ratio")
    gc.freeze()

    rates_a, rates_b, ratios = [], [], []
    for _run in range(args.runs):
        ta, na = timed(lambda: full_path(data, settings))
        tb, nb = timed(lambda: baseline(data, settings, ref))
        if na != nb:
            sys.exit(f"resource counts differ: {na} vs {nb}")
        rates_a.append(na / ta)
        rates_b.append(nb / tb)
        ratios.append((na / ta) / (nb / tb))

    print(f"clients: {args.n}, resources per run: {na}, runs: {args.runs}")
    print(f"(a) full path  parse -> map -> validate -> serialize: {statistics.median(rates_a):>10,.0f} resources/s")
    print(f"(b) baseline   plain dicts + orjson (same bytes):      {statistics.median(rates_b):>10,.0f} resources/s")
    print(f"ratio a/b: {statistics.median(ratios):.3f} [{min(ratios):.3f}..{max(ratios):.3f}]  (target >= 0.30)")


if __name__ == "__main__":
    main()
