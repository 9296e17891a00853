"""What the write-ahead log raises: its own types, so the WAL knows nothing of OTLP or gRPC.

Receivers translate these into OTLP status codes (`receiver/_export.py`); other callers (tools,
tests, a future shared-storage writer) can handle them without importing a transport.
"""

from __future__ import annotations


class WalError(Exception):
    """Base of every error the write-ahead log raises."""


class WalUnavailable(WalError):
    """The log cannot take this record now; the same record may succeed later (retryable)."""


class WalFull(WalUnavailable):
    """Too much logged but not yet stored (lag limit) or too little free disk: back off and resend."""


class WalClosed(WalUnavailable):
    """The log is shutting down; another collector instance (or this one, restarted) will accept."""


class WalFailed(WalUnavailable):
    """A write or sync failed, or did not finish in time; what was appended is not known to be on disk."""


class WalCorrupt(WalError, ValueError):
    """A record whose length, kind or checksum is wrong: a torn write or damaged disk."""
