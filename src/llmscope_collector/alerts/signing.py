"""Webhook signatures: HMAC-SHA256 over the timestamp and the raw body.

Headers sent with every webhook POST:

    x-llmscope-timestamp: 1767225600                 (Unix seconds, at this attempt)
    x-llmscope-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

Signing the timestamp with the body lets a receiver refuse an old request replayed by someone
who captured it: check the signature, then that the timestamp is recent. The header may carry
several comma-separated `v1=` values (e.g. while a secret is rotated); one match is enough.
Receivers in Python can call `verify_signature`; elsewhere, recompute the HMAC (docs/alerts.md).
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "x-llmscope-timestamp"
SIGNATURE_HEADER = "x-llmscope-signature"
DEFAULT_TOLERANCE_S = 300
_SCHEME = "v1="


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `"<timestamp>." + body` under `secret`."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The two headers to send with `body`."""
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: _SCHEME + signature(secret, timestamp, body)}


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature_header: str | None,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when `signature_header` signs `body` at `timestamp` under `secret`, and `timestamp` is
    within `tolerance_s` of `now`. Pass the raw request body, before any JSON parsing.

    Example (any web framework)::

        ok = verify_signature(SECRET, request_body_bytes,
                              headers.get("x-llmscope-timestamp"), headers.get("x-llmscope-signature"))
    """
    if not timestamp or not signature_header or not timestamp.strip().isdigit():
        return False
    sent_at = int(timestamp.strip())
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        return False
    expected = signature(secret, sent_at, body)
    candidates = [part.strip() for part in signature_header.split(",")]
    given = [c.removeprefix(_SCHEME).encode("utf-8", "replace") for c in candidates if c.startswith(_SCHEME)]
    return any(hmac.compare_digest(expected.encode("ascii"), g) for g in given)
