"""HMAC-SHA256 request signing for Binance SIGNED endpoints (pure).

Binance signs ``totalParams`` = query string + request body, concatenated with no
separator. We send every parameter in the query string and no body, so the payload is
exactly the encoded query, and the signature is appended as its last parameter.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import urlencode


__all__ = ["encode_params", "sign"]


def sign(secret: str, payload: str) -> str:
    """The lowercase hex HMAC-SHA256 of ``payload`` keyed with ``secret``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def encode_params(params: Sequence[tuple[str, str]]) -> str:
    """URL-encode ``params`` keeping their order: the order is part of what is signed."""
    return urlencode(list(params))
