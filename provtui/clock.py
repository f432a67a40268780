"""Wall-clock time, frozen by PROVTUI_FROZEN_TIME for snapshot tests and demos."""

from __future__ import annotations

import os
from datetime import UTC, datetime


def utc_now() -> datetime:
    frozen = os.environ.get("PROVTUI_FROZEN_TIME")
    if frozen:
        return datetime.fromisoformat(frozen)
    return datetime.now(UTC)


def utc_now_iso() -> str:
    return utc_now().isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
