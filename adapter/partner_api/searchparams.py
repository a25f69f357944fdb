"""What the partner-facing API serves: the resource types the adapter produces and their reference search
parameters (FHIR R4 names and element paths), used both as search criteria and as ``_include`` targets.

A table, not code paths: the CapabilityStatement, the query parser and the include resolver all read it, so
what the server announces is what it does. Only reference parameters are listed: a partner searches by patient
(``patient``/``subject``) or by ``_id``, and follows references with ``_include``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from adapter.consent.graph import reference_key

PATIENT = frozenset({"Patient"})
# Parameters that select a client's records: a search needs one of them (or _id), see query.py.
PATIENT_PARAMS = frozenset({"patient", "subject"})


@dataclass(frozen=True)
class RefParam:
    """A reference search parameter: the element paths it reads and the resource types it may point to
    (empty: any type the element allows)."""

    name: str
    paths: tuple[str, ...]
    targets: frozenset[str] = frozenset()
    doc: str = ""

    def keys(self, resource: Mapping[str, Any], target: str | None = None) -> Iterator[str]:
        """ "Type/id" of every literal reference the parameter reads in `resource` (contained "#" and
        logical-only references have no key), restricted to the parameter's targets and to `target`."""
        for path in self.paths:
            for node in _walk(resource, path.split(".")):
                text = node.get("reference") if isinstance(node, Mapping) else None
                key = reference_key(text, {}) if isinstance(text, str) else None
                if key is None:
                    continue
                rtype = key.partition("/")[0]
                if (not self.targets or rtype in self.targets) and (target is None or rtype == target):
                    yield key


def _walk(node: Any, steps: list[str]) -> Iterator[Any]:
    if not steps:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, steps)
        return
    if isinstance(node, Mapping) and steps[0] in node:
        value = node[steps[0]]
        for item in value if isinstance(value, list) else [value]:
            yield from _walk(item, steps[1:])


def _patient(path: str) -> dict[str, RefParam]:
    """R4's `patient` and `subject` parameters over the same element (subject: any target, patient: Patient)."""
    return {
        "patient": RefParam("patient", (path,), PATIENT, "the client (Patient) the resource is about"),
        "subject": RefParam("subject", (path,), frozenset(), "who the resource is about (always the client here)"),
    }


def _ref(name: str, path: str, *targets: str, doc: str = "") -> dict[str, RefParam]:
    return {name: RefParam(name, (path,), frozenset(targets), doc)}


# Resource type -> reference parameters (R4 SearchParameter names; paths as the adapter's mappings fill them).
SEARCH: Mapping[str, Mapping[str, RefParam]] = {
    "Patient": _ref("organization", "managingOrganization", "Organization", doc="the clinic"),
    "Practitioner": {},
    "Organization": _ref("partof", "partOf", "Organization", doc="the parent organization (program -> clinic)"),
    "RelatedPerson": _ref("patient", "patient", "Patient", doc="the client"),
    "Observation": {
        **_patient("subject"),
        **_ref("encounter", "encounter", "Encounter"),
        **_ref("performer", "performer"),
        **_ref("has-member", "hasMember", "Observation", doc="item answers of an instrument's total score"),
        **_ref("derived-from", "derivedFrom", doc="the QuestionnaireResponse a score was computed from"),
    },
    "QuestionnaireResponse": {
        **_patient("subject"),
        **_ref("encounter", "encounter", "Encounter"),
        **_ref("author", "author"),
        **_ref("source", "source"),
    },
    "Condition": {**_patient("subject"), **_ref("encounter", "encounter", "Encounter")},
    "CarePlan": {
        **_patient("subject"),
        **_ref("encounter", "encounter", "Encounter"),
        **_ref("goal", "goal", "Goal", doc="the plan's goals"),
        **_ref("condition", "addresses", "Condition", doc="the problems the plan addresses"),
        **_ref("activity-reference", "activity.reference", doc="the ServiceRequests the plan schedules"),
        **_ref("performer", "activity.detail.performer"),
    },
    "Goal": _patient("subject"),
    "ServiceRequest": {
        **_patient("subject"),
        **_ref("encounter", "encounter", "Encounter"),
        **_ref("requester", "requester"),
        **_ref("performer", "performer"),
        **_ref("based-on", "basedOn", doc="the CarePlan the referral or service belongs to"),
    },
    "Task": {
        **_patient("for"),
        **_ref("focus", "focus", doc="the ServiceRequest (referral) the task is about"),
        **_ref("based-on", "basedOn"),
        **_ref("encounter", "encounter", "Encounter"),
        **_ref("owner", "owner"),
        **_ref("requester", "requester"),
    },
    "Consent": {
        **_ref("patient", "patient", "Patient", doc="the client"),
        **_ref("organization", "organization", "Organization"),
        **_ref("actor", "provision.actor.reference"),
    },
    "Provenance": {
        **_ref("patient", "target", "Patient", doc="Provenance of the Patient resource itself (R4 semantics)"),
        **_ref("target", "target"),
        **_ref("agent", "agent.who"),
    },
    "DocumentReference": {
        **_patient("subject"),
        **_ref("encounter", "context.encounter", "Encounter"),
        **_ref("author", "author"),
        **_ref("custodian", "custodian", "Organization"),
        **_ref("related", "context.related", doc="the Consents a 42 CFR 2.32 notice explains"),
    },
    "Flag": {
        **_patient("subject"),
        **_ref("encounter", "encounter", "Encounter"),
        **_ref("author", "author"),
    },
    "MedicationRequest": {
        **_patient("subject"),
        **_ref("encounter", "encounter", "Encounter"),
        **_ref("requester", "requester"),
    },
    "MedicationStatement": {
        **_patient("subject"),
        **_ref("context", "context", "Encounter"),
        **_ref("source", "informationSource"),
    },
    "Encounter": {
        **_patient("subject"),
        **_ref("practitioner", "participant.individual", "Practitioner"),
        **_ref("reason-reference", "reasonReference"),
        **_ref("service-provider", "serviceProvider", "Organization"),
    },
}

RESOURCE_TYPES = tuple(sorted(SEARCH))


def patient_params(resource_type: str) -> dict[str, RefParam]:
    """The parameters of `resource_type` that select by client."""
    return {name: p for name, p in SEARCH[resource_type].items() if name in PATIENT_PARAMS}
