"""Page tokens: the opaque ``_page`` value of a searchset's ``next`` link.

A token carries the query (canonical parameters), the offset, and the view it was issued for (partner id and
purpose of use), signed with HMAC-SHA256 under a server key. It is stable (the same token gives the same page
while the records and consents do not change) and cannot widen anything: a tampered token fails the signature,
a token issued to another partner or purpose is refused, and the page is computed afresh through the consent
release point at the time of the request, never from what was visible when the token was issued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from adapter.errors import Problem, UsageError

_VERSION = 1


@dataclass(frozen=True)
class Page:
    resource_type: str
    params: tuple[tuple[str, str], ...]  # SearchQuery.canonical
    offset: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _invalid() -> UsageError:
    # One message for every failure: a caller learns nothing about why another view's token was refused.
    message = "invalid page token: repeat the search"
    return UsageError(message, [Problem(message, field="_page")])


class PageTokens:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the page token key needs at least 32 bytes")
        self._key = key

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def issue(self, page: Page, partner_id: str, purpose: str) -> str:
        body = {
            "v": _VERSION,
            "p": partner_id,
            "u": purpose,
            "t": page.resource_type,
            "q": [list(pair) for pair in page.params],
            "o": page.offset,
        }
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def open(self, token: str, resource_type: str, partner_id: str, purpose: str) -> Page:
        """The page a token names, if it was issued by this server for this partner, purpose and type."""
        payload_text, dot, signature_text = token.partition(".")
        try:
            payload, signature = _unb64(payload_text), _unb64(signature_text)
        except (binascii.Error, ValueError):
            raise _invalid() from None
        if not dot or not hmac.compare_digest(signature, self._sign(payload)):
            raise _invalid()
        body = json.loads(payload)
        if (body.get("v"), body.get("p"), body.get("u"), body.get("t")) != (
            _VERSION,
            partner_id,
            purpose,
            resource_type,
        ):
            raise _invalid()
        return Page(resource_type, tuple((str(k), str(v)) for k, v in body["q"]), int(body["o"]))
