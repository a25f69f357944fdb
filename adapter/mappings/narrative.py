"""Generated narrative (Resource.text): small, escaped XHTML built from the same data as the resource."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape as _html_escape
from typing import Any

XHTML_NS = "http://www.w3.org/1999/xhtml"


def escape(text: str) -> str:
    # Text content only: quotes stay as they are, which is also how XML serializers write them back.
    return _html_escape(text, quote=False)


def heading(text: str) -> str:
    return f"<p><b>{escape(text)}</b></p>"


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def bullets(items: Iterable[str]) -> str:
    lis = "".join(f"<li>{escape(item)}</li>" for item in items)
    return f"<ul>{lis}</ul>" if lis else ""


def section(title: str, items: Iterable[str]) -> str:
    body = bullets(items)
    return heading(title) + body if body else ""


def generated(*blocks: str) -> dict[str, Any]:
    """A Narrative with status generated: everything in it is also in the structured data."""
    return {"status": "generated", "div": f'<div xmlns="{XHTML_NS}">{"".join(b for b in blocks if b)}</div>'}
