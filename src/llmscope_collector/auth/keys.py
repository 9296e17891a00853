"""API key and admin token format: high-entropy random secrets, stored only as SHA-256 digests.

A key reads `lsk_<id>_<secret>`: the public `id` finds the record without a scan, the digest of the
whole key is compared in constant time. 256 random bits make a slow password hash unnecessary.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

KEY_PREFIX = "lsk_"
ADMIN_PREFIX = "lsa_"
_KEY_RE = re.compile(r"^lsk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_digest(secret: str, stored_digest: str) -> bool:
    """Constant-time comparison of `secret`'s digest with a stored one."""
    return hmac.compare_digest(digest(secret), stored_digest)


def new_api_key() -> tuple[str, str]:
    """A fresh `(key_id, key)`; the key is shown to the user once and never stored."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The public id inside a well-formed key, else None."""
    match = _KEY_RE.match(key)
    return match.group(1) if match else None


def display_prefix(key_id: str) -> str:
    """What lists show instead of the key: enough to recognise it, useless to an attacker."""
    return f"{KEY_PREFIX}{key_id}"


def new_admin_token() -> str:
    return f"{ADMIN_PREFIX}{secrets.token_urlsafe(32)}"
