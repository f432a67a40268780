"""The soak's options (:class:`Options`), what it found (:class:`SoakResult`), and its progress lines."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Options:
    minutes: float = 30.0
    people: int = 20_000
    apps: int = 10
    manual_apps: int = 2
    groups: int = 300
    rules: int = 30
    seed: int = 8
    converge_minutes: float = 15.0
    work: Path | None = None
    store: str | None = None  # a PostgreSQL URL to soak that store (#19); default: a directory in ``work``
    ldap_share: float = 0.2  # of the people come from LDAP, the rest from the HR CSV
    app_down_seconds: float | None = None  # default: a fifth of the storm, at most 3 minutes


@dataclass
class SoakResult:
    seed: int
    changes: dict[str, Counter] = field(default_factory=dict)  # writer -> acknowledged changes by operation
    refused: dict[str, int] = field(default_factory=dict)  # writer -> changes refused or failed (not acknowledged)
    kills: Counter = field(default_factory=Counter)  # "worker", "writer cli", "writer svc"
    calls: dict[str, int] = field(default_factory=dict)  # app -> SCIM requests received
    faults: dict[str, Counter] = field(default_factory=dict)  # app -> faults injected by kind
    app_down: dict[str, Any] = field(default_factory=dict)
    requeued: dict[str, int] = field(default_factory=dict)  # what the admin did after the storm
    mails: int = 0
    converged: bool = False
    converge_seconds: float | None = None
    acknowledged: int = 0
    report: Any = None

    @property
    def ok(self) -> bool:
        return self.converged and self.report is not None and self.report.ok


def log(message: str, started: float) -> None:
    """A progress line, stamped with the seconds since ``started`` (time.monotonic())."""
    print(f"[{time.monotonic() - started:7.1f}s] {message}", flush=True)
