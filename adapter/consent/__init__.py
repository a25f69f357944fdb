"""Consent and 42 CFR Part 2 enforcement: label (pure) -> decide (pure) -> redact and annotate (pure) -> enforce.

``enforce()`` is the only function that releases data; docs/consent.md explains the rules to a compliance reader.
"""

from adapter.consent.audit import AuditLog, AuditRecord
from adapter.consent.audit_store import SqlAuditLog
from adapter.consent.decide import decide
from adapter.consent.enforce import Disclosure, Withheld, enforce
from adapter.consent.labeler import LabeledBundle, ResourceLabels, label
from adapter.consent.model import (
    ConsentAssessment,
    ConsentRef,
    Decision,
    DisclosureRequest,
    Emergency,
    HipaaRestriction,
    Identifier,
    Reason,
    ResourceDecision,
)
from adapter.consent.sources import ProgramFacts, SourceIndex

__all__ = [
    "AuditLog",
    "AuditRecord",
    "ConsentAssessment",
    "ConsentRef",
    "Decision",
    "Disclosure",
    "DisclosureRequest",
    "Emergency",
    "HipaaRestriction",
    "Identifier",
    "LabeledBundle",
    "ProgramFacts",
    "Reason",
    "ResourceDecision",
    "ResourceLabels",
    "SourceIndex",
    "SqlAuditLog",
    "Withheld",
    "decide",
    "enforce",
    "label",
]
