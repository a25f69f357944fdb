"""The partner-facing FHIR API as a service: metadata, read, and search by patient with _include and paging.

No web framework here (adapter/api/routes/fhir.py is the thin HTTP layer). Every resource returned comes out of
the consent release point for the calling partner and purpose (view.py); docs/partner-api.md is the reader's guide.
"""

from adapter.partner_api.capability import capability_statement
from adapter.partner_api.paging import PageTokens
from adapter.partner_api.service import PartnerApi, ResourceIndex
from adapter.partner_api.view import CallerView, ReleasedChart, carries_part2, is_notice

__all__ = [
    "CallerView",
    "PageTokens",
    "PartnerApi",
    "ReleasedChart",
    "ResourceIndex",
    "capability_statement",
    "carries_part2",
    "is_notice",
]
