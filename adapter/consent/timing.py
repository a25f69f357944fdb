"""FHIR dates and instants against a period, judged at the request instant (never the wall clock).

A FHIR date may be partial ("2025", "2025-12", "2025-12-31") or a dateTime with an offset. A date-only bound
covers its whole day (month, year): the instant is compared by its calendar date on the clinic's clock
(DisclosureRequest.local_instant: the instant in the clinic's time zone). Unparseable text gives None so
callers can fail closed.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


@dataclass(frozen=True, slots=True)
class Moment:
    """A point (aware datetime) or a whole day/month/year (first and last date)."""

    instant: datetime | None = None
    first: date | None = None
    last: date | None = None

    def bounds(self) -> tuple[date, date]:
        if self.instant is not None:
            day = self.instant.date()
            return day, day
        assert self.first is not None and self.last is not None  # noqa: S101 - built that way by parse()
        return self.first, self.last


@cache
def clinic_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` ("America/New_York"); ValueError when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as America/New_York)") from None


def parse(text: Any) -> Moment | None:
    if not isinstance(text, str) or not text:
        return None
    match = _PARTIAL.match(text)
    if match:
        year, month, day = int(match[1]), match[2], match[3]
        try:
            if day:
                d = date(year, int(month or 1), int(day))
                return Moment(first=d, last=d)
            if month:
                m = int(month)
                return Moment(first=date(year, m, 1), last=date(year, m, calendar.monthrange(year, m)[1]))
            return Moment(first=date(year, 1, 1), last=date(year, 12, 31))
        except ValueError:
            return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return Moment(instant=value) if value.tzinfo is not None else None


def on_or_after(moment: Moment, start: Moment) -> bool:
    if moment.instant is not None and start.instant is not None:
        return moment.instant >= start.instant
    return moment.bounds()[0] >= start.bounds()[0]


def on_or_before(moment: Moment, end: Moment) -> bool:
    if moment.instant is not None and end.instant is not None:
        return moment.instant <= end.instant
    return moment.bounds()[1] <= end.bounds()[1]


def within(moment: Moment, period: Any) -> bool | None:
    """Is the moment inside a FHIR Period (either bound may be absent)? None when a bound cannot be read."""
    if not isinstance(period, dict):
        return None
    result = True
    if period.get("start") is not None:
        start = parse(period.get("start"))
        if start is None:
            return None
        result = result and on_or_after(moment, start)
    if period.get("end") is not None:
        end = parse(period.get("end"))
        if end is None:
            return None
        result = result and on_or_before(moment, end)
    return result


def before_start(moment: Moment, period: Any) -> bool:
    """The moment is before the period starts (a not-yet-valid consent rather than an expired one)."""
    start = parse(period.get("start")) if isinstance(period, dict) else None
    return start is not None and not on_or_after(moment, start)


_DATA_DATE_ELEMENTS = (
    "effectiveDateTime",
    "effectiveInstant",
    "effectivePeriod",
    "occurrenceDateTime",
    "occurrencePeriod",
    "authoredOn",
    "authored",
    "recordedDate",
    "onsetDateTime",
    "issued",
    "date",
    "created",
    "dateTime",
    "period",
    "recorded",
    "start",
)


def data_moment(resource: dict[str, Any]) -> Moment | None:
    """When the data in a resource happened, for Consent.provision.dataPeriod: the first clinical date found."""
    for name in _DATA_DATE_ELEMENTS:
        value = resource.get(name)
        if isinstance(value, dict):
            value = value.get("start")
        moment = parse(value)
        if moment is not None:
            return moment
    return None
