"""Per-app limits on downstream calls: concurrency and a rate."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """A token bucket: at most ``rate`` calls a second, with bursts up to ``rate``.

    ``rate`` None means no limit.  Waiters queue fairly on one lock, so a burst of
    tasks is spread out instead of all waking at once.
    """

    def __init__(self, rate: float | None, *, clock=time.monotonic, sleep=asyncio.sleep):
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(rate or 0)
        self._stamp = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self.rate:
            return
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
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
        settings = (int(app["settings"].get("concurrency") or 4), app["settings"].get("rate"))
        limits = cache.get(app["id"])
        if limits is None or limits.settings != settings:
            limits = cache[app["id"]] = cls(*settings)
        return limits
