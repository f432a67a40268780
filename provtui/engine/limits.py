"""Per-app limits on downstream calls: concurrency and a rate."""

from __future__ import annotations

import asyncio
import math
import time

from provtui.domain.numbers import CONCURRENCY, RATE


class RateLimiter:
    """A token bucket: at most ``rate`` calls a second, with bursts up to ``rate`` (at least one call: a rate
    below one a second holds a single token, so the next call waits 1/rate seconds instead of for ever).

    ``rate`` None means no limit.  Waiters queue fairly on one lock, so a burst of
    tasks is spread out instead of all waking at once.
    """

    def __init__(self, rate: float | None, *, clock=time.monotonic, sleep=asyncio.sleep):
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._burst = max(float(rate or 0), 1.0)
        self._tokens = self._burst
        self._stamp = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.rate:
            return
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                # never a zero-length wait: float residue must not spin the loop
                await self._sleep(max((1 - self._tokens) / self.rate, 0.001))


class AppLimits:
    """The concurrency semaphore and rate limiter of one app, rebuilt if its settings change."""

    def __init__(self, concurrency: int, rate: float | None):
        self.settings = (concurrency, rate)
        self.semaphore = asyncio.Semaphore(concurrency)
        self.rate = RateLimiter(rate)

    @classmethod
    def for_app(cls, cache: dict[str, AppLimits], app: dict) -> AppLimits:
        settings = (usable_concurrency(app["settings"].get("concurrency")), usable_rate(app["settings"].get("rate")))
        limits = cache.get(app["id"])
        if limits is None or limits.settings != settings:
            limits = cache[app["id"]] = cls(*settings)
        return limits


def usable_concurrency(value) -> int:
    """An app's concurrency as the engine uses it: the default (4) unless a whole number, kept within 1-256."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return 4
    return min(max(value, CONCURRENCY.low), CONCURRENCY.high)


def usable_rate(value) -> float | None:
    """An app's rate as the engine uses it.  Settings are checked when set (provtui.domain.numbers.RATE), but a
    store written before that may hold 1e-300, NaN or infinity: the first would stall every call for ever, so a
    rate is kept within the range, and one that is not a finite number means no limit."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return min(max(float(value), RATE.low), RATE.high)
