"""Record ids and timestamps, the same everywhere a record is made."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def new_id(prefix: str, nbytes: int = 8) -> str:
    """A random id with a readable prefix: ``new_id("col")`` -> ``col_9f86d081884c7d65``."""
    return f"{prefix}_{secrets.token_hex(nbytes)}"


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """A time read back from the metadata store, as UTC (some servers drop the zone)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
