"""Numbers an admin gives: each setting's range, checked with the range in the message.

Every numeric option and setting has a ``Range`` here (README: "Limits"); the CLI parses its
options with them (provtui.cli.safe_input) and the service checks the same ranges again,
so the console and any other caller meet them too.  NaN and the infinities are never in range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from provtui.domain.errors import InvalidInput


def _number_text(value: float) -> str:
    return f"{value:,}".replace(",", "") if isinstance(value, int) else f"{value:g}"


@dataclass(frozen=True)
class Range:
    low: int | float
    high: int | float
    whole: bool = True  # an integer (else any finite number)
    unit: str = ""  # "calls per second", "days": what the number counts

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        unit = f" of {self.unit}" if self.unit else ""
        return f"{kind}{unit} from {_number_text(self.low)} to {_number_text(self.high)}"

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.whole:
            return isinstance(value, int) and self.low <= value <= self.high
        return isinstance(value, (int, float)) and math.isfinite(value) and self.low <= value <= self.high

    def check(self, field: str, value: Any) -> Any:
        """``value`` if it is in range; InvalidInput naming ``field`` and the range if not."""
        if not self.contains(value):
            shown = repr(value) if not isinstance(value, (int, float)) or isinstance(value, bool) else str(value)
            raise InvalidInput(field, f"{shown[:40]} is not {self.describe()}")
        return value

    def parse(self, text: str) -> int | float:
        """``text`` as a number of this range's kind (a whole number, or any number: NaN and infinities too,
        which ``check`` then refuses); ValueError saying what is wanted (with the range) if it is not one."""
        value: int | float | None = None
        if len(text) <= 40:  # no number in any range is longer: int() of 5,000 digits is slow and refused anyway
            try:
                value = int(text)
            except ValueError:
                if not self.whole:
                    try:
                        value = float(text)
                    except ValueError:
                        pass
        if value is None:
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise ValueError(f"{shown!r} is not {self.describe()}")
        return float(value) if not self.whole else value


CONCURRENCY = Range(1, 256, unit="calls in flight")
RATE = Range(0.01, 10_000, whole=False, unit="calls per second")  # slower than one call in 100 s is a stuck app
RETENTION_DAYS = Range(0, 36_500, unit="days")  # delete_after_days: up to a hundred years (dates stay in the calendar)
LICENSES = Range(0, 1_000_000_000, unit="licenses")
PRIORITY = Range(0, 1_000_000)
LIMIT = Range(0, 1_000_000_000)  # audit, report: how many rows (0: none)
HISTORY_LIMIT = Range(1, 1_000_000_000)  # user history: the newest N events
STALE_DAYS = Range(0, 1_000_000_000, unit="days")  # report stale: only compared with ages
MAX_WAIT = Range(0, 86_400, whole=False, unit="seconds")  # sync: retry transient faults up to a day
INTERVAL = Range(1, 525_600, unit="minutes")  # an LDAP source's schedule: up to a year
PORT = Range(1, 65_535)
PASSWORD_MIN_LENGTH = Range(1, 256)
PASSWORD_CLASSES = Range(1, 4)
THRESHOLD = Range(0, 1, whole=False)  # safeguard.threshold: a share of an app's entitled users
SCIM_SAFEGUARD_MINIMUM = Range(0, 1_000_000_000)  # people a SCIM client masters before its safeguard applies
SCIM_SAFEGUARD_WINDOW = Range(1, 604_800, unit="seconds")  # how far back a SCIM client's deprovisions count
SCIM_RATE = Range(1, 1_000_000, unit="requests per second")  # one SCIM client's sustained request rate
LIVE_SAFEGUARD_WINDOW = Range(1, 604_800, unit="seconds")  # how far back a live source's deprovisions count
LDAP_TIMEOUT = Range(0.001, 3600, whole=False, unit="seconds")
